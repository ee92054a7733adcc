//! `clutchcall`: the ClutchCall Streams engine in one binary.
//!
//! `main` only parses the command line and hands off: `serve` joins every component
//! (HTTP control plane, MoQT relay, later RTMP ingest) in one process; the other subcommands
//! are admin tools that work on the same data directory.

mod config;
mod edge;
mod http;
mod serve;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: hyper hands each request body out as frames split off
/// its read buffer, so while an upload's frames wait for the disk writer it allocates a fresh
/// buffer (a few hundred KiB) per read, and glibc returned those pages to the kernel between
/// reads: ~65,000 page faults (each zeroing a page) per 512 MiB uploaded, about half the
/// engine's CPU for an upload. mimalloc keeps them for reuse (bench/upload-vod/RESULTS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ClutchCall Streams: self-hostable live and on-demand video over MoQT.
#[derive(Debug, Parser)]
#[command(name = "clutchcall", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    store: config::StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process: control plane (HTTP), MoQT relay (QUIC/WebTransport).
    Serve(Box<config::ServeArgs>),
    /// Manage API keys of the data directory's database.
    #[command(subcommand)]
    Keys(api::cli::KeysCommand),
    /// Manage the signing keys of playback tokens.
    #[command(subcommand, name = "signing-keys")]
    SigningKeys(api::cli::SigningKeysCommand),
    /// Print a sample configuration file with every key commented.
    SampleConfig,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    config::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(cli.store, *args).await,
            Command::Keys(cmd) => {
                let settings = config::Settings::resolve(cli.store, config::ServeArgs::default())?;
                api::cli::run_keys(settings.api_config(), cmd)
                    .await
                    .map_err(anyhow::Error::from)
            }
            Command::SigningKeys(cmd) => {
                let settings = config::Settings::resolve(cli.store, config::ServeArgs::default())?;
                api::cli::run_signing_keys(settings.api_config(), cmd)
                    .await
                    .map_err(anyhow::Error::from)
            }
            Command::SampleConfig => {
                print!("{}", config::SAMPLE_CONFIG);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
