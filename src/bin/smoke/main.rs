//! The live phase gate (not built yet).
fn main() {
    eprintln!("smoke-entwurf-v2-spawn-live: not built yet");
    std::process::exit(1);
}
