//! Start-up of the modules that keep state shared by every core (usrloc,
//! registrar, auth, auth_db, permissions): their parameters are read, their
//! databases opened on store threads, their tables loaded, and the result put
//! in `Env::shared` for the workers.

use std::sync::Arc;

use ringsip::intercept::NioConfig;
use ringsip::modules::auth::db::{AuthDb, AuthDbParams};
use ringsip::modules::auth::Auth;
use ringsip::modules::corex::alias::AliasSubdomains;
use ringsip::modules::permissions::{self, Permissions};
use ringsip::modules::registrar::{RegParams, Registrar};
use ringsip::modules::usrloc::{UlParams, Usrloc};
use ringsip::script::ctx::{Epoch, Shared};
use ringsip::script::registry::ModParams;
use ringsip::store::{StoreHandle, Stores};

/// What start-up built: the shared state, and what shutdown must finish.
pub struct Services {
    pub shared: Shared,
    pub usrloc: Arc<Usrloc>,
    pub stores: Stores,
}

impl Services {
    /// Writes what is still only in memory (usrloc write-back) and stops the store threads.
    pub fn shutdown(self) {
        self.usrloc.flush();
        drop(self.shared);
        self.stores.finish();
    }
}

/// The store thread for `module`'s `db_url`, if it has one.
fn store_for(
    mp: &ModParams,
    stores: &mut Stores,
    module: &str,
) -> Result<Option<StoreHandle>, String> {
    match mp.str(module, "db_url") {
        Some(url) => stores
            .handle(url)
            .map(Some)
            .map_err(|e| format!("{module}: {e}")),
        None => Ok(None),
    }
}

pub fn build(mp: &ModParams, epoch: Epoch) -> Result<Services, String> {
    let mut stores = Stores::default();
    let mut shared = Shared::default();

    let ul_params = UlParams::from_modparams(mp)?;
    let ul_store = if ul_params.db_mode != 0 {
        store_for(mp, &mut stores, "usrloc")?
    } else {
        None
    };
    let usrloc = Arc::new(Usrloc::new(ul_params, ul_store, epoch.unix_ms)?);
    shared.insert(usrloc.clone());
    shared.add_timer(usrloc.clone());
    shared.insert(Arc::new(Registrar {
        params: RegParams::from_modparams(mp),
    }));

    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("auth: no random secret: {e}"))?;
    shared.insert(Arc::new(Auth::from_modparams(mp, &secret)?));
    let auth_store = store_for(mp, &mut stores, "auth_db")?;
    shared.insert(Arc::new(AuthDb::new(
        AuthDbParams::from_modparams(mp),
        auth_store,
    )?));

    // An address_file takes the place of the database (KAMAILIO-REFERENCE §7.1).
    if let Some(file) = mp.str("permissions", "address_file") {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("permissions: address_file {file}: {e}"))?;
        let rows = permissions::parse_address_file(&text)
            .map_err(|e| format!("permissions: address_file {file}: {e}"))?;
        shared.insert(Arc::new(Permissions::from_rows(&rows)));
    } else if let Some(store) = store_for(mp, &mut stores, "permissions")? {
        shared.insert(Arc::new(Permissions::from_store(mp, store)?));
    }

    // corex: the network intercept stage's settings and alias_subdomains.
    shared.insert(Arc::new(NioConfig::from_modparams(mp)?));
    shared.insert(Arc::new(AliasSubdomains::from_modparams(mp)?));

    Ok(Services {
        shared,
        usrloc,
        stores,
    })
}
