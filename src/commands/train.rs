use std::path::PathBuf;

use anyhow::Context;
use scorestream_pipeline::config::load_str;
use scorestream_tools::synth::train_demo_model;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where to write `features.csv` and `model/` (the demo's assets live in jobs/demo).
    #[arg(long, default_value = "jobs/demo")]
    out: PathBuf,
    #[arg(long, default_value_t = 20_000)]
    accounts: usize,
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let job = load_str(scorestream_tools::demo::EMBEDDED.job_toml)
        .map_err(|p| anyhow::anyhow!("embedded demo job is invalid: {p:?}"))?;
    eprintln!(
        "generating {} accounts and {} labelled events (seed {}), training 20-64-32-1 MLP...",
        args.accounts, args.events, args.seed
    );
    let s = train_demo_model(&job, &args.out, args.accounts, args.events, args.seed)
        .await
        .context("training failed")?;
    println!(
        "trained on {} rows (fraud rate {:.2}%): held-out AUC {:.4}\nwrote {}/features.csv and {}/model/",
        s.rows,
        s.fraud_rate * 100.0,
        s.holdout_auc,
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
