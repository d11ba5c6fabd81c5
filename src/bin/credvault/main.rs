//! The credvault command-line tool: `credvault idp` (the local identity provider every test and
//! the demo use) and `credvault demo` (the end-to-end demo).

mod demo;
mod idp;
mod inspect;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("idp") => idp::run(&args[2..]),
        Some("demo") => demo::run(),
        Some("inspect") => inspect::run(&args[2..]),
        Some("--version") => {
            println!("credvault {}", credvault::VERSION);
            0
        }
        _ => {
            eprintln!(
                "usage: credvault demo | credvault inspect [TOKEN|-] [--json] | credvault idp [options] | credvault --version"
            );
            2
        }
    };
    std::process::exit(code);
}
