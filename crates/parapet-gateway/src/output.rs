//! Output checks beyond the detection engine:
//!
//! * **Improper output handling (OWASP LLM05, MITRE ATLAS AML.T0057):** links and images in
//!   model output whose destination is outside an allowlist of domains. A Markdown image is
//!   fetched by the client as soon as it is rendered, so a prompt-injected model can leak data
//!   in its URL (the "markdown image exfiltration" attacks reported against Bing Chat, ChatGPT
//!   plugins and Google Bard in 2023). Markdown is parsed with a CommonMark parser
//!   (pulldown-cmark), so every valid form is seen: inline, `<…>` destinations, destinations
//!   with spaces or escapes, reference-style definitions, autolinks, protocol-relative
//!   `//host` URLs; raw HTML `<img src>`/`srcset` (and other URL attributes) in HTML blocks and
//!   inline HTML is checked too.
//! * **System-prompt leakage (OWASP LLM07, AML.T0056):** a canary token placed in the system
//!   prompt that must never appear in an answer.
//!
//! Both produce [`Finding`]s (kinds [`Kind::Exfiltration`] and [`Kind::SystemPromptLeak`]) so
//! the policy decides what happens, as for every other finding.

use parapet_core::{Finding, Kind, Span};
use pulldown_cmark::{Event, Options, Parser, Tag};
use regex::Regex;
use std::sync::OnceLock;

/// Which link and image destinations may appear in output.
#[derive(Debug, Clone, Default)]
pub struct LinkPolicy {
    /// Allowed domains (each also allows its subdomains), lower case.
    pub allowed_domains: Vec<String>,
    /// Check links too, not only images.
    pub check_links: bool,
}

impl LinkPolicy {
    /// True when a destination may stay: relative URLs, `data:` and `mailto:` URLs (no request
    /// leaves the client without a click and a visible address), and http(s) URLs whose host is
    /// an allowed domain. Other schemes (`javascript:`, `ftp:` …) are never allowed.
    pub fn allows(&self, url: &str) -> bool {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        let rest = if let Some(r) = lower.strip_prefix("//") {
            r
        } else if let Some(r) = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
        {
            r
        } else if lower.starts_with("https:") || lower.starts_with("http:") {
            // `http:\\host`, `http:/host`: browsers repair these; treat as external
            lower
                .trim_start_matches(|c| c != ':')
                .trim_start_matches([':', '/', '\\'])
        } else if lower.starts_with("data:") || lower.starts_with("mailto:") {
            return true;
        } else if has_scheme(&lower) {
            return false;
        } else {
            // relative: no host of its own (a leading backslash pair is protocol-relative)
            if lower.starts_with("\\\\") || lower.starts_with("/\\") || lower.starts_with("\\/") {
                return false;
            }
            return true;
        };
        let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let host = if host_port.starts_with('[') {
            host_port
                .split(']')
                .next()
                .unwrap_or("")
                .trim_start_matches('[')
        } else {
            host_port.split(':').next().unwrap_or("")
        };
        let host = host.trim_end_matches('.');
        self.host_allowed(host)
    }

    /// True when `url` is an http(s) or protocol-relative URL whose host is an allowed
    /// domain (stricter than [`LinkPolicy::allows`]: relative URLs do not count).
    pub fn allowlisted(&self, url: &str) -> bool {
        let l = url.trim().to_ascii_lowercase();
        (l.starts_with("http://") || l.starts_with("https://") || l.starts_with("//"))
            && self.allows(&l)
    }

    fn host_allowed(&self, host: &str) -> bool {
        if host.is_empty() {
            return false;
        }
        self.allowed_domains.iter().any(|d| {
            host == d
                || (host.len() > d.len()
                    && host.ends_with(d.as_str())
                    && host.as_bytes().get(host.len() - d.len() - 1) == Some(&b'.'))
        })
    }
}

fn has_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    for c in chars {
        if c == ':' {
            return true;
        }
        if !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.') {
            return false;
        }
    }
    false
}

/// Converts byte offsets to code-point offsets for one text.
pub(crate) struct CharIndex {
    starts: Vec<usize>,
}

impl CharIndex {
    pub(crate) fn new(text: &str) -> CharIndex {
        let mut starts: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        starts.push(text.len());
        CharIndex { starts }
    }
    /// Code-point index of byte offset `b` (rounded down to a char boundary).
    pub(crate) fn char_of(&self, b: usize) -> usize {
        match self.starts.binary_search(&b) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }
}

fn html_url_attr() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        // attribute values of URL-bearing attributes in an HTML fragment the CommonMark
        // parser already isolated; the parser, not this pattern, finds the HTML.
        Regex::new(
            r#"(?is)\b(src|srcset|href|poster|background|data|action|formaction|lowsrc|dynsrc)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))"#,
        )
        .ok()
    })
    .as_ref()
}

/// URLs in the URL-bearing attributes of an HTML fragment (`srcset` split into its candidates).
fn html_urls(fragment: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(re) = html_url_attr() else {
        // fail closed: a fragment we cannot read counts as pointing outside the allowlist
        return vec!["//unreadable".into()];
    };
    for c in re.captures_iter(fragment) {
        let name = c
            .get(1)
            .map(|m| m.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        let value = c
            .get(2)
            .or_else(|| c.get(3))
            .or_else(|| c.get(4))
            .map(|m| decode_entities(m.as_str()))
            .unwrap_or_default();
        if name == "srcset" {
            for cand in value.split(',') {
                if let Some(u) = cand.split_whitespace().next() {
                    out.push(u.to_string());
                }
            }
        } else {
            out.push(value);
        }
    }
    out
}

/// Decodes the few character references that matter for reading a URL's host.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&#47;", "/")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&sol;", "/")
        .replace("&colon;", ":")
        .replace("&#58;", ":")
        .replace("&period;", ".")
        .replace("&#46;", ".")
        .replace("&amp;", "&")
}

fn exfil(id: &str, entity: &str, span: Span, score: f32, msg: &str) -> Finding {
    Finding::new(id, Kind::Exfiltration, span, score, msg).with_entity(entity)
}

/// Exfiltration findings for the links and images in `text` (Markdown and raw HTML) whose
/// destination `policy` does not allow. Spans (code points) cover the whole construct (the
/// image, the link, the reference definition or the HTML fragment), so redaction removes it.
pub fn exfil_findings(text: &str, policy: &LinkPolicy) -> Vec<Finding> {
    // cheap pre-check: nothing that can carry a URL
    if !text.contains(['(', '<', ':', '[']) {
        return Vec::new();
    }
    let ix = CharIndex::new(text);
    let span = |r: std::ops::Range<usize>| Span::new(ix.char_of(r.start), ix.char_of(r.end));
    let mut out = Vec::new();
    let parser = Parser::new_ext(text, Options::empty());
    for (_, def) in parser.reference_definitions().iter() {
        if !policy.allows(&def.dest) {
            out.push(exfil(
                "output.exfil.reference",
                "EXFIL_LINK",
                span(def.span.clone()),
                0.9,
                "link reference definition to a domain outside the allowlist",
            ));
        }
    }
    for (ev, range) in parser.into_offset_iter() {
        match ev {
            Event::Start(Tag::Image { dest_url, .. }) if !policy.allows(&dest_url) => {
                out.push(exfil(
                    "output.exfil.image",
                    "EXFIL_IMAGE",
                    span(range),
                    0.95,
                    "image loaded from a domain outside the allowlist",
                ));
            }
            Event::Start(Tag::Link { dest_url, .. })
                if policy.check_links && !policy.allows(&dest_url) =>
            {
                out.push(exfil(
                    "output.exfil.link",
                    "EXFIL_LINK",
                    span(range),
                    0.9,
                    "link to a domain outside the allowlist",
                ));
            }
            Event::Html(h) | Event::InlineHtml(h) => {
                let lower = h.to_ascii_lowercase();
                let is_img = lower.contains("<img")
                    || lower.contains("<source")
                    || lower.contains("<picture");
                if !(is_img || policy.check_links) {
                    continue;
                }
                if html_urls(&h).iter().any(|u| !policy.allows(u)) {
                    let (id, entity) = if is_img {
                        ("output.exfil.html_image", "EXFIL_IMAGE")
                    } else {
                        ("output.exfil.html_link", "EXFIL_LINK")
                    };
                    out.push(exfil(
                        id,
                        entity,
                        span(range),
                        0.95,
                        "HTML with a URL outside the allowlist",
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// A [`Kind::SystemPromptLeak`] finding for each occurrence of `canary` in `text`.
pub fn canary_findings(text: &str, canary: &str) -> Vec<Finding> {
    if canary.is_empty() {
        return Vec::new();
    }
    let ix = CharIndex::new(text);
    let n = canary.len();
    text.match_indices(canary)
        .map(|(b, _)| {
            Finding::new(
                "output.canary",
                Kind::SystemPromptLeak,
                Span::new(ix.char_of(b), ix.char_of(b + n)),
                1.0,
                "the system prompt's canary token appears in the answer",
            )
            .with_entity("CANARY_TOKEN")
        })
        .collect()
}

/// Length (code points) of the system-prompt stretches an answer must not reproduce.
pub const REPRO_WINDOW: usize = 64;

/// [`Kind::SystemPromptLeak`] findings where `text` reproduces `window` consecutive code points
/// of `secret` verbatim (windows taken every `window / 2` code points, so any verbatim copy of
/// `1.5 × window` code points is found). Prompts shorter than `window` are not checked.
pub fn reproduction_findings(text: &str, secret: &str, window: usize) -> Vec<Finding> {
    let window = window.max(8);
    let starts: Vec<usize> = secret
        .char_indices()
        .map(|(b, _)| b)
        .chain([secret.len()])
        .collect();
    let n = starts.len() - 1;
    if n < window || text.len() < window {
        return Vec::new();
    }
    let ix = CharIndex::new(text);
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let to = (from + window).min(n);
        let chunk = &secret[starts[from]..starts[to]];
        if let Some(b) = text.find(chunk) {
            out.push(
                Finding::new(
                    "output.system_prompt_reproduction",
                    Kind::SystemPromptLeak,
                    Span::new(ix.char_of(b), ix.char_of(b + chunk.len())),
                    0.9,
                    "the answer reproduces part of the system prompt verbatim",
                )
                .with_entity("SYSTEM_PROMPT"),
            );
            break;
        }
        if to == n {
            break;
        }
        from = (from + window / 2).min(n - window);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp() -> LinkPolicy {
        LinkPolicy {
            allowed_domains: vec!["example.com".into()],
            check_links: true,
        }
    }

    fn kinds(text: &str) -> Vec<(String, usize, usize)> {
        exfil_findings(text, &lp())
            .into_iter()
            .map(|f| (f.entity.unwrap_or_default(), f.span.start, f.span.end))
            .collect()
    }

    #[test]
    fn allowlist_hosts() {
        let p = lp();
        for ok in [
            "https://example.com/x",
            "http://docs.example.com/a?b",
            "HTTPS://EXAMPLE.COM",
            "/relative/path",
            "page.html",
            "#frag",
            "data:image/png;base64,AAAA",
            "mailto:a@b.c",
            "https://user@example.com:8443/",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        assert!(p.allowlisted("https://docs.example.com/a"));
        assert!(!p.allowlisted("/relative") && !p.allowlisted("https://evil.com"));
        for bad in [
            "https://evil.com/?q=secret",
            "//evil.com/x.png",
            "https://example.com.evil.com/",
            "https://notexample.com/",
            "https://example.com@evil.com/",
            "javascript:alert(1)",
            "http:\\\\evil.com\\x",
            "\\\\evil.com",
            "ftp://example.com/",
            "https://[::1]/",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
    }

    #[test]
    fn every_commonmark_form_is_found() {
        assert_eq!(
            kinds("a ![x](https://evil.com/p?d=s) b"),
            vec![("EXFIL_IMAGE".into(), 2, 30)]
        );
        assert_eq!(kinds("![x]( <https://evil.com/a b.png> )").len(), 1);
        assert_eq!(kinds("![x](//evil.com/p.png)").len(), 1);
        assert_eq!(kinds("![x](https://evil.com/p.png \"title\")").len(), 1);
        assert_eq!(kinds("![x](https:\\/\\/evil.com/p.png)").len(), 1);
        // reference style: both the use and the definition
        let r = kinds("see ![logo][1]\n\n[1]: https://evil.com/l.png\n");
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().any(|(e, _, _)| e == "EXFIL_IMAGE"));
        // autolink and plain link
        assert_eq!(kinds("<https://evil.com/x>")[0].0, "EXFIL_LINK");
        assert_eq!(kinds("[click](https://evil.com/x)")[0].0, "EXFIL_LINK");
        // allowed ones are left alone
        assert!(kinds("![x](https://example.com/a.png) [y](https://cdn.example.com)").is_empty());
        // in a code span nothing is rendered
        assert!(kinds("`![x](https://evil.com/p.png)`").is_empty());
    }

    #[test]
    fn raw_html_images_and_srcset() {
        assert_eq!(
            kinds("hi <img src=\"https://evil.com/a.png\"> there")[0].0,
            "EXFIL_IMAGE"
        );
        assert_eq!(
            kinds("<img srcset=\"https://example.com/a.png 1x, https://evil.com/b.png 2x\">").len(),
            1
        );
        assert_eq!(kinds("<p>\n<img src='//evil.com/p'>\n</p>\n").len(), 1);
        assert!(kinds("<img src=\"https://example.com/a.png\">").is_empty());
    }

    #[test]
    fn links_unchecked_when_configured() {
        let p = LinkPolicy {
            check_links: false,
            ..lp()
        };
        assert!(exfil_findings("[c](https://evil.com)", &p).is_empty());
        assert_eq!(exfil_findings("![c](https://evil.com)", &p).len(), 1);
    }

    #[test]
    fn canary_spans_are_code_points() {
        let f = canary_findings("ü cnry-1234 x", "cnry-1234");
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].span.start, f[0].span.end), (2, 11));
        assert!(canary_findings("nothing", "cnry").is_empty());
    }
}
