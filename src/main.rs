use std::process::ExitCode;

use clap::Parser;

/// Many small allocations live briefly on each request; mimalloc serves them with less
/// contention between worker threads than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
