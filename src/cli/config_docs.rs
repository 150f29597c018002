//! `troupe config-docs` (hidden): prints the README's configuration table, made from
//! the broker's key table, or with `--readme FILE` rewrites the block between the
//! table's marker comments in that file. It exists so the README is regenerated rather
//! than edited by hand; a unit test fails while the README's block is stale.

use std::path::PathBuf;

use clap::Args;

use crate::settings::docs::{markdown_table, replace_block};

#[derive(Args, Debug)]
pub struct ConfigDocsArgs {
    /// Rewrite the configuration table of this Markdown file in place.
    #[arg(long, value_name = "FILE")]
    pub readme: Option<PathBuf>,
}

pub fn run(args: ConfigDocsArgs) -> i32 {
    let table = markdown_table();
    let Some(path) = args.readme else {
        print!("{table}");
        return 0;
    };
    let updated = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| replace_block(&text, &table))
        .and_then(|text| std::fs::write(&path, text).map_err(|e| e.to_string()));
    match updated {
        Ok(()) => {
            log::info!("wrote the configuration table to {}", path.display());
            0
        }
        Err(e) => {
            log::error!("{}: {e}", path.display());
            1
        }
    }
}
