//! Exfiltration links and images in model output (OWASP LLM05, ATLAS AML.T0057).
//!
//! Chat UIs fetch Markdown and HTML images automatically, so an image pointing at an outside
//! host leaks whatever its URL carries without a click (the "markdown image exfiltration"
//! pattern reported against several LLM chat products since 2023). Recognised forms: Markdown
//! inline images and links, reference-style definitions (`[1]: url`, an image when an
//! `![..][1]` uses the label), angle-bracket autolinks, raw HTML `<img src>`, bare URLs, and
//! protocol-relative URLs (`//host/path`).

use regex::Regex;

/// How a URL appears in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlForm {
    /// `![alt](url)`.
    MarkdownImage,
    /// `[text](url)`.
    MarkdownLink,
    /// `[label]: url` used by an image.
    ReferenceImage,
    /// `[label]: url` not used by an image.
    ReferenceLink,
    /// `<https://…>`.
    Autolink,
    /// `<img src=…>`.
    HtmlImage,
    /// A bare `https://…` URL.
    Bare,
}

impl UrlForm {
    /// True for forms a renderer fetches without a click.
    pub fn auto_fetched(&self) -> bool {
        matches!(
            self,
            UrlForm::MarkdownImage | UrlForm::ReferenceImage | UrlForm::HtmlImage
        )
    }
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            UrlForm::MarkdownImage => "markdown image",
            UrlForm::MarkdownLink => "markdown link",
            UrlForm::ReferenceImage => "reference image",
            UrlForm::ReferenceLink => "reference link",
            UrlForm::Autolink => "autolink",
            UrlForm::HtmlImage => "html img",
            UrlForm::Bare => "bare url",
        }
    }
}

/// One URL found in output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundUrl {
    /// Form it appeared in.
    pub form: UrlForm,
    /// The URL text.
    pub url: String,
    /// Lower-cased host, if the URL is external (`http(s)://` or `//`).
    pub host: Option<String>,
    /// Byte range of the URL in the output.
    pub range: (usize, usize),
}

/// Compiled URL extractors.
#[derive(Debug, Clone)]
pub struct UrlExtractor {
    md_image: Regex,
    md_link: Regex,
    ref_def: Regex,
    ref_use: Regex,
    autolink: Regex,
    html_img: Regex,
    bare: Regex,
}

impl UrlExtractor {
    /// Compiles the patterns (fixed literals).
    pub fn new() -> Result<UrlExtractor, regex::Error> {
        Ok(UrlExtractor {
            md_image: Regex::new(r"!\[[^\]\n]{0,500}\]\(\s*<?([^)\s>]+)")?,
            md_link: Regex::new(r"(?:^|[^!])\[[^\]\n]{0,500}\]\(\s*<?([^)\s>]+)")?,
            ref_def: Regex::new(r"(?m)^[ \t]{0,3}\[([^\]\n]{1,100})\]:[ \t]*<?([^\s>]+)")?,
            ref_use: Regex::new(r"!\[[^\]\n]{0,500}\]\[([^\]\n]{0,100})\]")?,
            autolink: Regex::new(r"<((?:https?:)?//[^>\s]+)>")?,
            html_img: Regex::new(r#"(?i)<img\b[^>]{0,500}?\bsrc\s*=\s*["']?([^"'\s>]+)"#)?,
            bare: Regex::new(r"(?i)(?:https?:)?//[a-z0-9][a-z0-9.-]*[^\s)\]>'\x22]*")?,
        })
    }

    /// Every URL in `text`, each byte range reported once (the most specific form wins).
    pub fn extract(&self, text: &str) -> Vec<FoundUrl> {
        let mut out: Vec<FoundUrl> = Vec::new();
        let mut push = |form: UrlForm, m: regex::Match<'_>| {
            let r = (m.start(), m.end());
            if out
                .iter()
                .any(|u| u.range.0 <= r.0 && r.0 < u.range.1.max(u.range.0 + 1))
            {
                return;
            }
            out.push(FoundUrl {
                form,
                url: m.as_str().to_string(),
                host: host_of(m.as_str()),
                range: r,
            });
        };
        let image_labels: Vec<String> = self
            .ref_use
            .captures_iter(text)
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_lowercase()))
            .collect();
        for c in self.md_image.captures_iter(text) {
            if let Some(m) = c.get(1) {
                push(UrlForm::MarkdownImage, m);
            }
        }
        for c in self.html_img.captures_iter(text) {
            if let Some(m) = c.get(1) {
                push(UrlForm::HtmlImage, m);
            }
        }
        for c in self.ref_def.captures_iter(text) {
            if let (Some(label), Some(m)) = (c.get(1), c.get(2)) {
                let form = if image_labels.contains(&label.as_str().to_lowercase()) {
                    UrlForm::ReferenceImage
                } else {
                    UrlForm::ReferenceLink
                };
                push(form, m);
            }
        }
        for c in self.md_link.captures_iter(text) {
            if let Some(m) = c.get(1) {
                push(UrlForm::MarkdownLink, m);
            }
        }
        for c in self.autolink.captures_iter(text) {
            if let Some(m) = c.get(1) {
                push(UrlForm::Autolink, m);
            }
        }
        for m in self.bare.find_iter(text) {
            push(UrlForm::Bare, m);
        }
        out
    }
}

/// Lower-cased host of an `http(s)://` or protocol-relative URL; `None` for other schemes
/// (`data:`, relative paths), which cannot reach an outside host.
pub fn host_of(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .or_else(|| lower.strip_prefix("//"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    if host.is_empty() {
        None
    } else {
        Some(host.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(text: &str) -> Vec<(UrlForm, Option<String>)> {
        UrlExtractor::new()
            .unwrap()
            .extract(text)
            .into_iter()
            .map(|u| (u.form, u.host))
            .collect()
    }

    #[test]
    fn recognises_every_form() {
        let h = Some("evil.example".to_string());
        assert_eq!(
            forms("x ![a](https://evil.example/p?d=1) y"),
            vec![(UrlForm::MarkdownImage, h.clone())]
        );
        assert_eq!(
            forms("[a](http://evil.example/p)"),
            vec![(UrlForm::MarkdownLink, h.clone())]
        );
        assert_eq!(
            forms("![logo][1]\n[1]: https://evil.example/l.png"),
            vec![(UrlForm::ReferenceImage, h.clone())]
        );
        assert_eq!(
            forms("[1]: https://evil.example/l"),
            vec![(UrlForm::ReferenceLink, h.clone())]
        );
        assert_eq!(
            forms("<https://evil.example/s>"),
            vec![(UrlForm::Autolink, h.clone())]
        );
        assert_eq!(
            forms("![](//evil.example/p.gif)"),
            vec![(UrlForm::MarkdownImage, h.clone())]
        );
        assert_eq!(
            forms("<IMG width=1 SRC='https://user@evil.example:8443/t.gif'>"),
            vec![(UrlForm::HtmlImage, h.clone())]
        );
        assert_eq!(
            forms("see https://evil.example/x."),
            vec![(UrlForm::Bare, h)]
        );
        assert_eq!(forms("![a](data:image/png;base64,AAAA)")[0].1, None);
        assert!(forms("no links here").is_empty());
    }
}
