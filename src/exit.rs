//! The exit codes of every `roost` subcommand: 0 done, 1 failed, 64 the command line was wrong
//! (`EX_USAGE`). A leaf: the modules that implement subcommands return these without depending
//! on the command-line parser.

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 64;
