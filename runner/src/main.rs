//! `catwalk-runner serve`, the machine entrypoint. Settings come from the environment; see
//! `serve`'s docs.

fn usage() -> ! {
    eprintln!("usage: catwalk-runner serve");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let stop_rx = catwalk_runner::http::stop_on_signals();
    let result = match mode.as_str() {
        "serve" => match catwalk_runner::serve::ServeConfig::from_env(|k| std::env::var(k).ok()) {
            Ok(cfg) => catwalk_runner::serve::run(cfg, stop_rx).await,
            Err(why) => {
                eprintln!("catwalk-runner serve: {why}");
                std::process::exit(2)
            }
        },
        // The local machines service used to be a mode of this binary; say where it went
        // rather than a bare usage line to whoever still runs it this way.
        "machines" => {
            eprintln!(
                "catwalk-runner: no `machines` mode: the local Fly Machines API is its own binary, catwalk-machines (tools/machines), and not part of the machine image"
            );
            std::process::exit(2)
        }
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("catwalk-runner {mode}: {e}");
        std::process::exit(1);
    }
}
