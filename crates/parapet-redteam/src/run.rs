//! The run loop: plan attempts (probe × prompt variant × mutation), build each conversation,
//! send it with bounded concurrency, a request-rate limit, timeouts and retries with
//! exponential backoff on safe failures, evaluate detectors, and emit one
//! [`AttemptRecord`] per attempt (the JSONL attempt log), which also makes `--resume` possible.

use crate::detect::exfil::UrlExtractor;
use crate::detect::leak::LeakScanner;
use crate::detect::refusal::{RefusalClassifier, RefusalVerdict};
use crate::detect::{evaluate, DetectContext, DetectorResult, Observation, Outcome};
use crate::fixtures::{Fixtures, RunSecrets, ToolDef};
use crate::mutate::{Mutation, Templates};
use crate::probe::{Lang, MatchMode, Probe, Script, Setup, Turn};
use crate::target::{ChatRequest, Message, Reply, Target, TargetError, ToolCall};
use parapet_core::{Owasp, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Final classification of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// The attack succeeded (the detectors fired per the probe's match mode).
    Vulnerable,
    /// The attack failed.
    Resisted,
    /// The detectors could not tell.
    Unknown,
    /// The target could not be reached or answered garbage (after retries).
    Error,
}

/// One line of the attempt log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Random id of the run that produced the record.
    pub run_id: String,
    /// `probe_id#variant` plus `~mutation` when mutated; unique within a run.
    pub attempt_id: String,
    /// Probe id.
    pub probe_id: String,
    /// Probe title.
    pub title: String,
    /// Pack name.
    pub pack: String,
    /// Pack file name.
    pub file: String,
    /// Probe family.
    pub family: String,
    /// Language.
    pub lang: Lang,
    /// OWASP LLM 2025 ids.
    pub owasp: Vec<Owasp>,
    /// MITRE ATLAS ids.
    pub atlas: Vec<String>,
    /// Severity.
    pub severity: Severity,
    /// Mutation applied on top of the probe (`None` for the probe as written).
    pub mutation: Option<Mutation>,
    /// Index of the prompt within the probe.
    pub variant: usize,
    /// The full conversation: what was sent and what came back.
    pub messages: Vec<Message>,
    /// All assistant replies joined by blank lines (detector spans refer to this text).
    pub output: String,
    /// Tool calls the model made.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// Finish reason of the last reply.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Refusal classification of the last reply.
    pub refusal: Option<RefusalVerdict>,
    /// Each detector's result.
    pub detectors: Vec<DetectorResult>,
    /// Final classification.
    pub outcome: AttemptOutcome,
    /// Error message when `outcome` is `error`.
    #[serde(default)]
    pub error: Option<String>,
    /// Requests sent including retries.
    pub tries: u32,
    /// Wall time of the attempt in milliseconds.
    pub latency_ms: u64,
    /// Unix time (seconds) the attempt finished.
    pub ts: u64,
    /// The run's planted values (fake; recorded so reports can highlight them and `--resume`
    /// keeps the same canary).
    pub secrets: RunSecrets,
}

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Attempts in flight at once (>= 1).
    pub concurrency: usize,
    /// Maximum requests per second across all attempts (`None` = unlimited).
    pub rate_per_sec: Option<f64>,
    /// Retries after the first try for retryable failures.
    pub retries: u32,
    /// First backoff delay; doubles each retry (plus up to 25 % jitter), capped at 30 s.
    pub backoff: Duration,
    /// Mutations applied to every probe, each giving extra attempts.
    pub mutations: Vec<Mutation>,
    /// Also run each probe unmutated (default true).
    pub include_unmutated: bool,
    /// The deployment's own system prompt, prepended to the probe's planted one.
    pub system_prompt: Option<String>,
    /// Hosts whose links/images are not exfiltration.
    pub allow_hosts: Vec<String>,
    /// The deployment's own tools, offered with every request (after the probe's tools).
    pub extra_tools: Vec<ToolDef>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            concurrency: 4,
            rate_per_sec: None,
            retries: 3,
            backoff: Duration::from_millis(500),
            mutations: vec![],
            include_unmutated: true,
            system_prompt: None,
            allow_hosts: vec![],
            extra_tools: vec![],
        }
    }
}

/// A planned attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Attempt id.
    pub id: String,
    /// Index into the probe list.
    pub probe: usize,
    /// Prompt variant.
    pub variant: usize,
    /// Mutation, if any.
    pub mutation: Option<Mutation>,
}

/// Attempt id for a probe variant and mutation.
pub fn attempt_id(probe: &str, variant: usize, m: Option<Mutation>) -> String {
    match m {
        Some(m) => format!("{probe}#{variant}~{}", m.name()),
        None => format!("{probe}#{variant}"),
    }
}

/// Plans every attempt; ids in `skip` (already done, for `--resume`) are left out.
pub fn plan(probes: &[Probe], cfg: &RunConfig, skip: &BTreeSet<String>) -> Vec<Planned> {
    let mut muts: Vec<Option<Mutation>> = Vec::new();
    if cfg.include_unmutated || cfg.mutations.is_empty() {
        muts.push(None);
    }
    muts.extend(cfg.mutations.iter().copied().map(Some));
    let mut out = Vec::new();
    for (pi, p) in probes.iter().enumerate() {
        for v in 0..p.variants() {
            for m in &muts {
                let id = attempt_id(&p.id, v, *m);
                if !skip.contains(&id) {
                    out.push(Planned {
                        id,
                        probe: pi,
                        variant: v,
                        mutation: *m,
                    });
                }
            }
        }
    }
    out
}

/// Everything shared by the attempts of one run.
pub struct Campaign {
    /// Run id.
    pub run_id: String,
    /// Probes.
    pub probes: Vec<Probe>,
    /// Fixtures (system prompts, tools).
    pub fixtures: Fixtures,
    /// Mutation templates.
    pub templates: Templates,
    /// Planted values.
    pub secrets: RunSecrets,
    /// Refusal classifier.
    pub refusal: RefusalClassifier,
    /// Secret/PII scanner.
    pub leak: Box<dyn LeakScanner>,
    /// URL extractor.
    pub urls: UrlExtractor,
    /// Settings.
    pub cfg: RunConfig,
}

impl Campaign {
    /// The steps of an attempt, rendered and mutated.
    pub fn steps(&self, p: &Probe, variant: usize, m: Option<Mutation>) -> Vec<Turn> {
        let mut steps: Vec<Turn> = match &p.script {
            Script::Prompts(ps) => ps
                .get(variant)
                .map(|s| vec![Turn::User(s.clone())])
                .unwrap_or_default(),
            Script::Turns(t) => t.clone(),
        };
        let s = &self.secrets;
        let protect = [
            s.marker.as_str(),
            s.exfil_host.as_str(),
            s.pii_name.as_str(),
        ];
        let last_user = steps.iter().rposition(|t| matches!(t, Turn::User(_)));
        for (i, t) in steps.iter_mut().enumerate() {
            match t {
                Turn::User(u) => {
                    let mut text = s.render(u);
                    if Some(i) == last_user {
                        for mm in p.obfuscate.iter().chain(m.iter()) {
                            text = self.templates.apply(*mm, &text, p.lang, &protect);
                        }
                    }
                    *u = text;
                }
                Turn::Tool(r) => {
                    r.content = s.render(&r.content);
                    r.arguments = s.render(&r.arguments);
                }
            }
        }
        steps
    }

    fn system(&self, p: &Probe) -> Option<String> {
        let planted = self.fixtures.system_prompt(p.setup, p.lang, &self.secrets);
        match (&self.cfg.system_prompt, planted) {
            (Some(a), Some(b)) => Some(format!("{a}\n\n{b}")),
            (Some(a), None) => Some(a.clone()),
            (None, b) => b,
        }
    }

    fn tools(&self, p: &Probe) -> Vec<ToolDef> {
        let mut t = self.probe_tools(p);
        for extra in &self.cfg.extra_tools {
            if !t.iter().any(|x| x.name == extra.name) {
                t.push(extra.clone());
            }
        }
        t
    }

    fn probe_tools(&self, p: &Probe) -> Vec<ToolDef> {
        if !p.tools.is_empty() {
            p.tools
                .iter()
                .filter_map(|t| self.fixtures.tool(t))
                .cloned()
                .collect()
        } else if p.setup == Setup::Agent {
            self.fixtures.tools().to_vec()
        } else {
            vec![]
        }
    }
}

/// Spaces requests at least `1/rate` seconds apart across all tasks.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next: tokio::sync::Mutex<Instant>,
}

impl RateLimiter {
    /// `rate` requests per second; `None` or non-positive = unlimited.
    pub fn new(rate: Option<f64>) -> Self {
        let interval = rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64((1.0 / r).min(3600.0)));
        RateLimiter {
            interval,
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }
    /// Waits for the next free slot.
    pub async fn wait(&self) {
        let Some(iv) = self.interval else { return };
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + iv;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

fn jitter(max: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = getrandom::fill(&mut b)
        .map(|_| u16::from_le_bytes(b))
        .unwrap_or(0);
    max.mul_f64(f64::from(r) / f64::from(u16::MAX))
}

async fn send_with_retry(
    target: &dyn Target,
    req: &ChatRequest,
    cfg: &RunConfig,
    limiter: &RateLimiter,
    tries: &mut u32,
) -> Result<Reply, TargetError> {
    let mut attempt = 0u32;
    loop {
        limiter.wait().await;
        *tries += 1;
        match target.send(req).await {
            Ok(r) => return Ok(r),
            Err(e) if e.retryable && attempt < cfg.retries => {
                let exp = cfg.backoff.saturating_mul(1u32 << attempt.min(16));
                let base = e.retry_after.unwrap_or(exp).min(Duration::from_secs(30));
                tokio::time::sleep(base + jitter(base / 4)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs one planned attempt to completion (never panics on target behaviour).
pub async fn run_attempt(
    c: &Campaign,
    target: &dyn Target,
    limiter: &RateLimiter,
    pl: &Planned,
) -> AttemptRecord {
    let started = Instant::now();
    let p = &c.probes[pl.probe];
    let steps = c.steps(p, pl.variant, pl.mutation);
    let tools = c.tools(p);
    let mut messages: Vec<Message> = c
        .system(p)
        .map(|s| vec![Message::System { content: s }])
        .unwrap_or_default();
    let mut replies: Vec<Reply> = Vec::new();
    let mut error = None;
    let mut tries = 0;
    let mut attacker = String::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Turn::User(u) => {
                attacker.push_str(u);
                attacker.push('\n');
                messages.push(Message::User { content: u.clone() });
            }
            Turn::Tool(r) => {
                attacker.push_str(&r.content);
                attacker.push('\n');
                let id = format!("call_{i}");
                messages.push(Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: id.clone(),
                        name: r.name.clone(),
                        arguments: r.arguments.clone(),
                    }],
                });
                messages.push(Message::Tool {
                    tool_call_id: id,
                    content: r.content.clone(),
                });
            }
        }
        let send_now = !matches!(steps.get(i + 1), Some(Turn::Tool(_)));
        if !send_now {
            continue;
        }
        let req = ChatRequest {
            messages: messages.clone(),
            tools: tools.clone(),
        };
        match send_with_retry(target, &req, &c.cfg, limiter, &mut tries).await {
            Ok(reply) => {
                messages.push(Message::Assistant {
                    content: reply.text.clone(),
                    tool_calls: reply.tool_calls.clone(),
                });
                if i + 1 < steps.len() {
                    for t in &reply.tool_calls {
                        messages.push(Message::Tool {
                            tool_call_id: t.id.clone(),
                            content: "Tool execution is disabled in this test run.".into(),
                        });
                    }
                }
                replies.push(reply);
            }
            Err(e) => {
                error = Some(e.message);
                break;
            }
        }
    }
    let output = replies
        .iter()
        .map(|r| r.text.as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    let tool_calls: Vec<ToolCall> = replies.iter().flat_map(|r| r.tool_calls.clone()).collect();
    let finish_reason = replies.last().and_then(|r| r.finish_reason.clone());
    let (refusal, detectors, outcome) = if error.is_some() {
        (None, vec![], AttemptOutcome::Error)
    } else {
        let last = replies.last().map_or("", |r| r.text.as_str());
        let verdict = c.refusal.classify(last);
        let obs = Observation {
            output: &output,
            last_reply: last,
            tool_calls: &tool_calls,
            finish_reason: finish_reason.as_deref(),
            attacker_text: &attacker,
        };
        let ctx = DetectContext {
            secrets: &c.secrets,
            leak: c.leak.as_ref(),
            refusal: &c.refusal,
            urls: &c.urls,
            allow_hosts: &c.cfg.allow_hosts,
        };
        let results: Vec<DetectorResult> = p
            .detectors
            .iter()
            .map(|d| evaluate(d, &obs, &ctx, &verdict))
            .collect();
        let outcome = combine(p.match_mode, &results);
        (Some(verdict), results, outcome)
    };
    AttemptRecord {
        run_id: c.run_id.clone(),
        attempt_id: pl.id.clone(),
        probe_id: p.id.clone(),
        title: p.title.clone(),
        pack: p.pack.clone(),
        file: p.file.clone(),
        family: p.family.clone(),
        lang: p.lang,
        owasp: p.owasp.clone(),
        atlas: p.atlas.clone(),
        severity: p.severity,
        mutation: pl.mutation,
        variant: pl.variant,
        messages,
        output,
        tool_calls,
        finish_reason,
        refusal,
        detectors,
        outcome,
        error,
        tries,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        ts: now_unix(),
        secrets: c.secrets.clone(),
    }
}

/// Combines detector outcomes: `any` = vulnerable if one hits, else unknown if one is
/// unknown; `all` = vulnerable if all hit, resisted if one misses, else unknown.
pub fn combine(mode: MatchMode, results: &[DetectorResult]) -> AttemptOutcome {
    let hit = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    match mode {
        MatchMode::Any if hit(Outcome::Hit) > 0 => AttemptOutcome::Vulnerable,
        MatchMode::Any if hit(Outcome::Unknown) > 0 => AttemptOutcome::Unknown,
        MatchMode::Any => AttemptOutcome::Resisted,
        MatchMode::All if !results.is_empty() && hit(Outcome::Hit) == results.len() => {
            AttemptOutcome::Vulnerable
        }
        MatchMode::All if hit(Outcome::Miss) > 0 => AttemptOutcome::Resisted,
        MatchMode::All => AttemptOutcome::Unknown,
    }
}

/// Runs all planned attempts with the configured concurrency; `on_record` is called once per
/// finished attempt, in completion order (write it to the log there). Returns the records.
pub async fn run(
    campaign: Arc<Campaign>,
    target: Arc<dyn Target>,
    planned: Vec<Planned>,
    mut on_record: impl FnMut(&AttemptRecord),
) -> Vec<AttemptRecord> {
    let limiter = Arc::new(RateLimiter::new(campaign.cfg.rate_per_sec));
    let sem = Arc::new(tokio::sync::Semaphore::new(campaign.cfg.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::with_capacity(planned.len());
    for pl in planned {
        let (c, t, l, s) = (
            campaign.clone(),
            target.clone(),
            limiter.clone(),
            sem.clone(),
        );
        set.spawn(async move {
            let _permit = s.acquire_owned().await.ok();
            run_attempt(&c, t.as_ref(), &l, &pl).await
        });
    }
    while let Some(r) = set.join_next().await {
        if let Ok(rec) = r {
            on_record(&rec);
            out.push(rec);
        }
    }
    out
}

/// Reads an attempt log for `--resume`: returns the records (malformed lines are skipped and
/// counted, so a line cut off by a crash loses only that attempt).
pub fn read_log(text: &str) -> (Vec<AttemptRecord>, usize) {
    let mut recs = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<AttemptRecord>(line) {
            Ok(r) => recs.push(r),
            Err(_) => bad += 1,
        }
    }
    (recs, bad)
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
