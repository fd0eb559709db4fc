//! Kamailio's configuration language: preprocessor, lexer, parser, compiler to
//! an IR with every name resolved, and the VM that runs it.

pub mod ctx;
pub mod ir;
pub mod pvkind;
pub mod registry;
pub mod value;
pub mod vm;
