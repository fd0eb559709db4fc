//! Unit tests of the presence server's decisions.
