use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = swiftgate::cli::Cli::parse();
    match swiftgate::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swiftgate: {e}");
            ExitCode::FAILURE
        }
    }
}
