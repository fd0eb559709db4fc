//! Kamailio's configuration language: preprocessor, lexer, parser, compiler to
//! an IR with every name resolved, and the VM that runs it.

pub mod ast;
pub mod diag;
pub mod format;
pub mod lexer;
pub mod preproc;
pub mod pv;
