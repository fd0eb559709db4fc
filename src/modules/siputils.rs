use crate::script::registry::ModuleDef;
pub static MODULE: ModuleDef = ModuleDef {
    name: "siputils",
    aliases: &[],
    functions: &[],
    params: &[],
    always: false,
};
