//! `probe`: see the library's documentation for the flow.

fn main() -> std::process::ExitCode {
    seedprobe::cli::main()
}
