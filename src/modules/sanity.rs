use crate::script::registry::ModuleDef;
pub static MODULE: ModuleDef = ModuleDef {
    name: "sanity",
    aliases: &[],
    functions: &[],
    params: &[],
    always: false,
};
