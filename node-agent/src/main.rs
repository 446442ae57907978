fn main() {
    eprintln!("fabricwatch-agent is not built yet");
    std::process::exit(2);
}
