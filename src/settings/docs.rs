//! The broker keys written out for people, from the one table in `broker_configs.rs`
//! (what Kafka's `ConfigDef.toHtml()` is to its docs): the Markdown table between two
//! marker comments in the README, and the listing at the end of `troupe serve --help`.
//! A test compares the README's block with `markdown_table()`, so the README cannot
//! drift from the code; `troupe config-docs --readme README.md` rewrites the block.

use super::broker_configs::BROKER_CONFIGS;
use super::config_def::ConfigDef;

pub const README_BEGIN: &str = "<!-- config-table:begin -->";
pub const README_END: &str = "<!-- config-table:end -->";

/// Help lines are wrapped to this width, as a terminal's default is 80 columns.
const HELP_WIDTH: usize = 80;

/// The README's configuration table, markers included, one line per key.
pub fn markdown_table() -> String {
    let mut out = format!(
        "{README_BEGIN}\n\
         <!-- generated from src/settings/broker_configs.rs: troupe config-docs --readme README.md -->\n\
         | key | type | default | valid values | meaning |\n\
         | --- | --- | --- | --- | --- |\n"
    );
    for def in BROKER_CONFIGS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            def.name,
            def.type_name(),
            markdown_default(def),
            def.valid_values(),
            def.doc.replace('|', "\\|")
        ));
    }
    out.push_str(README_END);
    out.push('\n');
    out
}

fn markdown_default(def: &ConfigDef) -> String {
    match (def.is_text(), def.default) {
        (true, "") => "\"\"".into(),
        (true, value) => format!("`{value}`"),
        (false, value) => value.into(),
    }
}

/// Every key with its type, limits, default and meaning, for `troupe serve --help`.
pub fn help_listing() -> String {
    let mut out = wrap(
        "Configuration keys (Kafka's names), set in a --config file, as TROUPE_* variables \
         (TROUPE_LOG_SEGMENT_BYTES sets log.segment.bytes) or with --override KEY=VALUE; \
         later sources win:",
        "",
    );
    for def in BROKER_CONFIGS {
        let default = match (def.is_text(), def.default) {
            (true, "") => "\"\"".to_string(),
            (_, value) => value.to_string(),
        };
        let valid = def.valid_values();
        let limits = if valid.is_empty() {
            def.type_name().to_string()
        } else {
            format!("{}, {valid}", def.type_name())
        };
        out.push_str(&format!(
            "\n  {} = {default}  ({})\n",
            def.name,
            plain(&limits)
        ));
        out.push_str(&wrap(&plain(def.doc), "      "));
    }
    out
}

/// A doc line for a terminal: without code marks, and a link `[text](#anchor)` as its
/// text alone.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let link = rest[open..].find("](").and_then(|close| {
            let target = open + close + 2;
            rest[target..]
                .find(')')
                .map(|end| (open + close, target + end))
        });
        let Some((close, end)) = link else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out.replace('`', "")
}

/// Wraps `text` into lines of at most `HELP_WIDTH` (a longer word stands alone),
/// each starting with `indent` and ending with a newline.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        let empty = line.len() == indent.len();
        if !empty && line.len() + 1 + word.len() > HELP_WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        } else if !empty {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `document` with its block between the markers (inclusive) replaced by `block`.
pub fn replace_block(document: &str, block: &str) -> Result<String, String> {
    let (start, end) = block_bounds(document)?;
    Ok(format!("{}{block}{}", &document[..start], &document[end..]))
}

/// The block between the markers (inclusive, with its final newline).
#[cfg(test)]
pub fn current_block(document: &str) -> Result<&str, String> {
    let (start, end) = block_bounds(document)?;
    Ok(&document[start..end])
}

fn block_bounds(document: &str) -> Result<(usize, usize), String> {
    let start = document
        .find(README_BEGIN)
        .ok_or_else(|| format!("no {README_BEGIN} line"))?;
    let end_marker = document[start..]
        .find(README_END)
        .map(|i| start + i)
        .ok_or_else(|| format!("no {README_END} line after {README_BEGIN}"))?;
    let mut end = end_marker + README_END.len();
    if document[end..].starts_with('\n') {
        end += 1;
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_table_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            current_block(&readme).unwrap(),
            markdown_table(),
            "README.md's configuration table is stale: run \
             `cargo run -q -- config-docs --readme README.md`"
        );
    }

    #[test]
    fn blocks_are_replaced_between_the_markers() {
        let doc = format!("a\n{README_BEGIN}\nold\n{README_END}\nb\n");
        let new = format!("{README_BEGIN}\nnew\n{README_END}\n");
        assert_eq!(replace_block(&doc, &new).unwrap(), format!("a\n{new}b\n"));
        assert!(replace_block("no markers", &new).is_err());
    }

    #[test]
    fn plain_text_drops_code_marks_and_link_targets() {
        assert_eq!(
            plain("`a` (see [File descriptors](#file-descriptors)) [x] b"),
            "a (see File descriptors) [x] b"
        );
    }

    #[test]
    fn help_lists_every_key_within_the_width() {
        let help = help_listing();
        for def in BROKER_CONFIGS {
            assert!(
                help.contains(&format!("\n  {} = ", def.name)),
                "{}",
                def.name
            );
        }
        assert!(help.contains("  log.segment.bytes = 1073741824  (int, [14, ...])"));
        for line in help.lines().filter(|l| l.starts_with("      ")) {
            assert!(
                line.len() <= HELP_WIDTH || !line.trim().contains(' '),
                "{line}"
            );
        }
    }
}
