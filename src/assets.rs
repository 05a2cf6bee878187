//! The demo job and its feature file and model, built into the binary so the
//! demo runs from any directory. Regenerate with `scorestream train`.

use scorestream_pipeline::demo::DemoAssets;

pub const DEMO: DemoAssets = DemoAssets {
    job_toml: include_str!("../jobs/demo/job.toml"),
    features_csv: include_bytes!("../jobs/demo/features.csv"),
    model_manifest: include_bytes!("../jobs/demo/model/manifest.json"),
    model_weights: include_bytes!("../jobs/demo/model/model.safetensors"),
};
