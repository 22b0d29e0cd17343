//! `parapet redteam`: run a red-team campaign against an LLM endpoint, list or validate probe
//! packs, and re-render reports from an attempt log. Thin layer over `parapet-redteam`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use parapet_redteam::detect::exfil::UrlExtractor;
use parapet_redteam::detect::leak::EngineLeakScanner;
use parapet_redteam::detect::refusal::RefusalClassifier;
use parapet_redteam::fixtures::{Fixtures, RunSecrets};
use parapet_redteam::mutate::{Mutation, Templates};
use parapet_redteam::probe::{self, Probe};
use parapet_redteam::report::{self, Summary};
use parapet_redteam::run::{self, AttemptOutcome, AttemptRecord, Campaign, RunConfig};
use parapet_redteam::target::{http_client, HttpJsonTarget, OpenAiTarget, Target};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Red-team an LLM endpoint with probes mapped to OWASP LLM Top 10 (2025) and MITRE ATLAS.
#[derive(Args, Debug)]
pub struct RedteamArgs {
    #[command(subcommand)]
    cmd: RedteamCmd,
}

#[derive(Subcommand, Debug)]
enum RedteamCmd {
    /// Run a campaign and write the attempt log and reports.
    Run(Box<RunArgs>),
    /// List the probes (built-in and extra packs) after filtering.
    List(SelectArgs),
    /// Validate probe pack files; exit 0 when all are valid.
    Validate {
        /// Pack files (YAML).
        files: Vec<PathBuf>,
    },
    /// Re-render summary and reports from an attempt log.
    Report {
        /// Attempt log (JSONL) written by `run`.
        #[arg(long)]
        log: PathBuf,
        /// Output directory.
        #[arg(long, default_value = "redteam-out")]
        out: PathBuf,
        /// Previous summary.json to compare with.
        #[arg(long)]
        baseline: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TargetKind {
    /// OpenAI-compatible `POST {base-url}/chat/completions`.
    Openai,
    /// Generic HTTP JSON endpoint with a body template.
    Http,
}

#[derive(Args, Debug)]
struct SelectArgs {
    /// Extra probe pack files (YAML), validated like the built-in ones.
    #[arg(long = "probes")]
    probes: Vec<PathBuf>,
    /// Use only the packs given with --probes.
    #[arg(long)]
    no_builtin: bool,
    /// Keep probes whose id starts with one of these prefixes (repeatable).
    #[arg(long = "filter")]
    filter: Vec<String>,
    /// Keep probes mapped to these OWASP ids (comma-separated, e.g. LLM01,LLM07).
    #[arg(long, value_delimiter = ',')]
    owasp: Vec<String>,
    /// Keep probes in this language (en, de).
    #[arg(long)]
    lang: Option<String>,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Kind of target.
    #[arg(long, value_enum, default_value = "openai")]
    target: TargetKind,
    /// OpenAI-compatible API root, e.g. http://127.0.0.1:11434/v1.
    #[arg(long)]
    base_url: Option<String>,
    /// Model name sent in the request.
    #[arg(long, default_value = "gpt-4o-mini")]
    model: String,
    /// Environment variable holding the API key (sent as a bearer token if set).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// Extra request header, "Name: value" (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// File with the deployment's own system prompt, sent before the planted one.
    #[arg(long)]
    system_prompt: Option<PathBuf>,
    /// JSON file with the deployment's own tools in OpenAI `tools` form, offered with every request.
    #[arg(long)]
    tools: Option<PathBuf>,
    /// HTTP target URL.
    #[arg(long)]
    url: Option<String>,
    /// HTTP target: file with the JSON body template ({{prompt}}, {{system}}, {{messages}}).
    #[arg(long)]
    body_template: Option<PathBuf>,
    /// HTTP target: JSON path to the answer, e.g. $.choices[0].message.content.
    #[arg(long, default_value = "$.answer")]
    response_path: String,
    /// Mutations to add (comma-separated names or "all").
    #[arg(long, value_delimiter = ',')]
    mutate: Vec<String>,
    /// Run only the mutated variants.
    #[arg(long)]
    mutated_only: bool,
    /// Attempts in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Maximum requests per second.
    #[arg(long)]
    rps: Option<f64>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Retries for timeouts, connection errors and HTTP 408/429/5xx.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// max_tokens sent to OpenAI-compatible targets.
    #[arg(long, default_value_t = 1024)]
    max_tokens: u32,
    /// temperature sent to OpenAI-compatible targets.
    #[arg(long)]
    temperature: Option<f32>,
    /// Hosts whose links and images are not counted as exfiltration (repeatable).
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// Output directory for attempts.jsonl, summary.json, report.html, report.sarif, junit.xml.
    #[arg(long, default_value = "redteam-out")]
    out: PathBuf,
    /// Continue an interrupted run from OUT/attempts.jsonl (same canary, skips finished attempts).
    #[arg(long)]
    resume: bool,
    /// Overwrite an existing attempt log.
    #[arg(long)]
    force: bool,
    /// Exit with status 1 when the attack success rate exceeds RATE (0.1 or 10%).
    #[arg(long, value_parser = parse_rate)]
    fail_above: Option<f64>,
    /// Previous summary.json: report regressions and fixes.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Exit with status 1 when the baseline comparison finds a regression.
    #[arg(long)]
    fail_on_regression: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("not a rate: {s:?} (use 0.1 or 10%)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!(
            "rate {s:?} must be between 0 and 1 (or 0% and 100%)"
        ));
    }
    Ok(v)
}

/// Runs `parapet redteam …`; returns the process exit status.
pub fn run(args: RedteamArgs) -> Result<i32> {
    match args.cmd {
        RedteamCmd::Run(a) => run_campaign(*a),
        RedteamCmd::List(s) => {
            let (probes, _) = select(&s)?;
            for p in &probes {
                let owasp: Vec<&str> = p.owasp.iter().map(|o| o.id()).collect();
                println!(
                    "{:<44} {} {:<11} {:<24} {}",
                    p.id,
                    p.lang.code(),
                    owasp.join(","),
                    p.atlas.join(","),
                    p.title
                );
            }
            eprintln!("{} probes", probes.len());
            Ok(0)
        }
        RedteamCmd::Validate { files } => {
            let fx = Fixtures::builtin().map_err(anyhow::Error::msg)?;
            let texts = read_packs(&files)?;
            let n =
                probe::load_packs(texts.iter().map(|(a, b)| (a.as_str(), b.as_str())), &fx)?.len();
            println!("ok: {n} probes in {} files", files.len());
            Ok(0)
        }
        RedteamCmd::Report { log, out, baseline } => {
            let text = std::fs::read_to_string(&log)
                .with_context(|| format!("reading {}", log.display()))?;
            let (recs, bad) = run::read_log(&text);
            if bad > 0 {
                eprintln!(
                    "warning: skipped {bad} malformed lines in {}",
                    log.display()
                );
            }
            let fx = Fixtures::builtin().map_err(anyhow::Error::msg)?;
            let probes = probe::load_builtin(&fx)?;
            let summary = write_reports(
                &out,
                &recs,
                &probes,
                "from attempt log",
                baseline.as_deref(),
            )?;
            print!("{}", summary.table());
            Ok(0)
        }
    }
}

fn read_packs(files: &[PathBuf]) -> Result<Vec<(String, String)>> {
    files
        .iter()
        .map(|f| {
            let t =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let name = f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            Ok((name, t))
        })
        .collect()
}

fn select(s: &SelectArgs) -> Result<(Vec<Probe>, Fixtures)> {
    let fx = Fixtures::builtin().map_err(anyhow::Error::msg)?;
    let extra = read_packs(&s.probes)?;
    let builtin: Vec<(String, String)> = if s.no_builtin {
        vec![]
    } else {
        probe::BUILTIN_PACKS
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let all = builtin
        .iter()
        .chain(extra.iter())
        .map(|(a, b)| (a.as_str(), b.as_str()));
    let mut probes = probe::load_packs(all, &fx)?;
    let mut owasp = Vec::new();
    for o in &s.owasp {
        owasp.push(
            parapet_core::Owasp::parse(o).with_context(|| format!("unknown OWASP id {o:?}"))?,
        );
    }
    if let Some(l) = &s.lang {
        if l != "en" && l != "de" {
            bail!("--lang must be en or de, not {l:?}");
        }
    }
    probes.retain(|p| {
        (s.filter.is_empty() || s.filter.iter().any(|f| p.id.starts_with(f.as_str())))
            && (owasp.is_empty() || p.owasp.iter().any(|o| owasp.contains(o)))
            && s.lang.as_deref().is_none_or(|l| p.lang.code() == l)
    });
    if probes.is_empty() {
        bail!("no probe matches the selection");
    }
    Ok((probes, fx))
}

fn parse_headers(hs: &[String]) -> Result<Vec<(String, String)>> {
    hs.iter()
        .map(|h| {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("header {h:?} must be \"Name: value\""))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn build_target(a: &RunArgs) -> Result<Arc<dyn Target>> {
    let client = http_client(Duration::from_secs(a.timeout.max(1))).map_err(anyhow::Error::msg)?;
    let headers = parse_headers(&a.headers)?;
    Ok(match a.target {
        TargetKind::Openai => {
            let base = a
                .base_url
                .as_deref()
                .context("--base-url is required for --target openai")?;
            let key = std::env::var(&a.api_key_env).ok().filter(|k| !k.is_empty());
            Arc::new(OpenAiTarget::new(
                client,
                base,
                &a.model,
                key,
                headers,
                Some(a.max_tokens),
                a.temperature,
            ))
        }
        TargetKind::Http => {
            let url = a
                .url
                .as_deref()
                .context("--url is required for --target http")?;
            let tpl = match &a.body_template {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?,
                None => r#"{"prompt": {{prompt}}}"#.to_string(),
            };
            Arc::new(
                HttpJsonTarget::new(client, url, &tpl, &a.response_path, headers)
                    .map_err(anyhow::Error::msg)?,
            )
        }
    })
}

fn run_campaign(a: RunArgs) -> Result<i32> {
    let (probes, fixtures) = select(&a.select)?;
    let mut mutations = Vec::new();
    for m in &a.mutate {
        if m == "all" {
            mutations.extend(Mutation::ALL);
        } else {
            mutations.push(Mutation::parse(m).with_context(|| {
                let names: Vec<&str> = Mutation::ALL.iter().map(|m| m.name()).collect();
                format!("unknown mutation {m:?} (known: {}, all)", names.join(", "))
            })?);
        }
    }
    if a.mutated_only && mutations.is_empty() {
        bail!("--mutated-only needs --mutate");
    }
    let target = build_target(&a)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let log_path = a.out.join("attempts.jsonl");
    let mut previous: Vec<AttemptRecord> = Vec::new();
    if log_path.exists() && !a.resume && !a.force {
        bail!(
            "{} exists; use --resume to continue it or --force to overwrite",
            log_path.display()
        );
    }
    if a.resume && log_path.exists() {
        let text = std::fs::read_to_string(&log_path)
            .with_context(|| format!("reading {}", log_path.display()))?;
        let (recs, bad) = run::read_log(&text);
        if bad > 0 {
            eprintln!(
                "warning: {bad} malformed lines in {} were skipped (they will be re-run)",
                log_path.display()
            );
        }
        previous = recs;
    }
    let (secrets, run_id) = match previous.first() {
        Some(r) => (r.secrets.clone(), r.run_id.clone()),
        None => {
            let s = RunSecrets::generate().map_err(anyhow::Error::msg)?;
            let id = format!("rt-{}", &s.canary[4..]);
            (s, id)
        }
    };
    let done: BTreeSet<String> = previous
        .iter()
        .filter(|r| r.outcome != AttemptOutcome::Error)
        .map(|r| r.attempt_id.clone())
        .collect();
    let system_prompt = match &a.system_prompt {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let extra_tools = match &a.tools {
        Some(p) => {
            let t =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            parapet_redteam::fixtures::parse_openai_tools(&t)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => vec![],
    };
    let cfg = RunConfig {
        concurrency: a.concurrency.max(1),
        rate_per_sec: a.rps,
        retries: a.retries,
        backoff: Duration::from_millis(500),
        mutations,
        include_unmutated: !a.mutated_only,
        system_prompt,
        allow_hosts: a.allow_hosts.clone(),
        extra_tools,
    };
    let planned = run::plan(&probes, &cfg, &done);
    let campaign = Arc::new(Campaign {
        run_id,
        probes: probes.clone(),
        fixtures,
        templates: Templates::builtin().map_err(anyhow::Error::msg)?,
        secrets,
        refusal: RefusalClassifier::builtin().map_err(anyhow::Error::msg)?,
        leak: Box::new(EngineLeakScanner::builtin().map_err(anyhow::Error::msg)?),
        urls: UrlExtractor::new()?,
        cfg,
    });
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(a.resume)
        .write(true)
        .truncate(!a.resume)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    if a.resume {
        let len = log.metadata().map(|m| m.len()).unwrap_or(0);
        if len > 0
            && !std::fs::read(&log_path)
                .map(|b| b.ends_with(b"\n"))
                .unwrap_or(true)
        {
            log.write_all(b"\n")?;
        }
    }
    eprintln!(
        "parapet redteam: {} probes, {} attempts to run ({} already done) against {}",
        probes.len(),
        planned.len(),
        done.len(),
        target.describe()
    );
    let bar = if a.no_progress {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(planned.len() as u64);
        if let Ok(st) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {elapsed_precise} eta {eta} {msg}",
        ) {
            b.set_style(st);
        }
        b
    };
    let mut write_err: Option<std::io::Error> = None;
    let mut vulnerable = 0usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let target_desc = target.describe();
    let new_records = rt.block_on(run::run(campaign.clone(), target, planned, |rec| {
        if rec.outcome == AttemptOutcome::Vulnerable {
            vulnerable += 1;
            bar.set_message(format!("{vulnerable} vulnerable"));
        }
        let line = serde_json::to_string(rec).unwrap_or_default();
        if let Err(e) = writeln!(log, "{line}").and_then(|_| log.flush()) {
            write_err.get_or_insert(e);
        }
        bar.inc(1);
    }));
    bar.finish_and_clear();
    if let Some(e) = write_err {
        bail!("writing {}: {e}", log_path.display());
    }
    let mut all = previous;
    all.extend(new_records);
    let summary = write_reports(&a.out, &all, &probes, &target_desc, a.baseline.as_deref())?;
    print!("{}", summary.table());
    eprintln!(
        "reports: {0}/summary.json {0}/report.html {0}/report.sarif {0}/junit.xml {0}/attempts.jsonl",
        a.out.display()
    );
    let mut code = 0;
    if let Some(limit) = a.fail_above {
        if summary.total.rate > limit {
            eprintln!(
                "FAIL: attack success rate {:.1}% is above {:.1}%",
                summary.total.rate * 100.0,
                limit * 100.0
            );
            code = 1;
        }
    }
    if a.fail_on_regression
        && summary
            .baseline
            .as_ref()
            .is_some_and(|d| !d.regressions.is_empty())
    {
        eprintln!("FAIL: regressions against the baseline");
        code = 1;
    }
    Ok(code)
}

fn write_reports(
    out: &Path,
    recs: &[AttemptRecord],
    probes: &[Probe],
    target: &str,
    baseline: Option<&Path>,
) -> Result<Summary> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut summary = Summary::from_records(recs, target);
    if let Some(b) = baseline {
        let text = std::fs::read_to_string(b)
            .with_context(|| format!("reading baseline {}", b.display()))?;
        let prev: Summary = serde_json::from_str(&text)
            .with_context(|| format!("baseline {} is not a summary.json", b.display()))?;
        summary.compare(&prev);
    }
    let w = |name: &str, body: &str| -> Result<()> {
        let p = out.join(name);
        std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))
    };
    w("summary.json", &serde_json::to_string_pretty(&summary)?)?;
    w("report.html", &report::html::render(&summary, recs))?;
    w(
        "report.sarif",
        &serde_json::to_string_pretty(&report::sarif::render(recs, probes))?,
    )?;
    w("junit.xml", &report::junit::render(recs))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert_eq!(parse_rate("10%"), Ok(0.1));
        assert!(parse_rate("150%").is_err());
        assert!(parse_rate("x").is_err());
    }
}
