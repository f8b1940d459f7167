//! `roost`: parses the command line and hands over to the library (see `cli`).

fn main() -> std::process::ExitCode {
    roost::cli::main()
}
