//! `swiftgate-fuzz TARGET`: one of `swiftgate::fuzz::TARGETS` under AFL++, in
//! persistent mode. Built and run by `scripts/fuzz`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = swiftgate::fuzz::target(&name) else {
        let names: Vec<&str> = swiftgate::fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: swiftgate-fuzz TARGET, one of: {}", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
