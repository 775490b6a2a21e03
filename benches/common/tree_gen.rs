//! Deterministic generator of a Drupal-like platform with one hosted site, for benchmarks.
//! Shared by `benches/pipeline.rs` (small trees) and `examples/gen_tree.rs` (the ~50,000 file /
//! ~800 MB tree that `benches/compare.sh` measures). The same seed and scale give the same bytes.
//!
//! Layout (under `root`): `index.php` and friends, `core/` (lib, modules, themes), `vendor/`
//! (composer packages), `modules/contrib/`, `themes/contrib/`, `sites/all/modules/`,
//! `sites/default/`, `sites/sites.php`, and the site `sites/<uri>/` with `settings.php` and a
//! `files/` folder of media-like uploads. Code files are PHP/JS/CSS/YAML/Twig text built from a
//! vocabulary, so they compress like code (zstd-3 roughly 3-4x); media files are random bytes
//! (incompressible), a few larger than 8 MiB; every package carries the same LICENSE.txt, as real
//! platforms do (dedup material).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The URI of the generated site.
pub const SITE_URI: &str = "bench.example.com";

/// What a generation produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct GenStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub code_files: u64,
    pub code_bytes: u64,
    pub media_files: u64,
    pub media_bytes: u64,
}

/// xorshift64* generator: tiny, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Log-normal with the given median and sigma.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (sigma * z).exp()
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    /// Fills `out` with `n` incompressible bytes.
    pub fn fill_noise(&mut self, out: &mut Vec<u8>, n: usize) {
        let start = out.len();
        out.reserve(n + 8);
        while out.len() - start < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(start + n);
    }
}

/// Syllable-built words, identifiers and English-ish comment words.
struct Vocab {
    idents: Vec<String>,
    words: Vec<String>,
}

impl Vocab {
    fn new(rng: &mut Rng) -> Vocab {
        const SYL: &[&str] = &[
            "ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "qui", "ro",
            "su", "ta", "ve", "wi", "xo", "yu", "ze", "con", "fig", "node", "user", "field",
            "form", "view", "cache", "entity", "route", "block", "menu", "theme", "render", "load",
            "save", "get", "set", "info", "data", "type", "item", "list", "query", "path",
        ];
        let word = |rng: &mut Rng| {
            let n = 1 + rng.below(3);
            (0..n).map(|_| *rng.pick(SYL)).collect::<String>()
        };
        let words: Vec<String> = (0..2000).map(|_| word(rng)).collect();
        let idents = (0..4000)
            .map(|_| {
                let n = 1 + rng.below(3);
                let mut s = String::new();
                for i in 0..n {
                    let w = rng.pick(&words).clone();
                    if i == 0 {
                        s.push_str(&w);
                    } else {
                        let mut c = w.chars();
                        if let Some(f) = c.next() {
                            s.push(f.to_ascii_uppercase());
                            s.push_str(c.as_str());
                        }
                    }
                }
                s
            })
            .collect();
        Vocab { idents, words }
    }

    fn ident<'a>(&'a self, rng: &mut Rng) -> &'a str {
        // Zipf-ish: a file keeps reusing a few common identifiers.
        let i = (self.idents.len() as f64 * rng.unit().powi(3)) as usize;
        &self.idents[i.min(self.idents.len() - 1)]
    }

    fn sentence(&self, rng: &mut Rng, out: &mut String) {
        let n = 4 + rng.below(10);
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(rng.pick::<String>(&self.words));
        }
        out.push('.');
    }
}

#[derive(Clone, Copy)]
enum Lang {
    Php,
    Js,
    Css,
    Yml,
    Twig,
    Txt,
}

impl Lang {
    fn ext(self) -> &'static str {
        match self {
            Lang::Php => "php",
            Lang::Js => "js",
            Lang::Css => "css",
            Lang::Yml => "yml",
            Lang::Twig => "html.twig",
            Lang::Txt => "txt",
        }
    }
}

fn code_text(v: &Vocab, rng: &mut Rng, lang: Lang, target: usize) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(target + 256);
    match lang {
        Lang::Php => s.push_str("<?php\n\nnamespace Drupal\\"),
        Lang::Js => s.push_str("(function ($, Drupal, drupalSettings) {\n  'use strict';\n"),
        Lang::Css => s.push_str("/**\n * @file\n * Styles.\n */\n"),
        _ => {}
    }
    if let Lang::Php = lang {
        let _ = writeln!(s, "{}\\{};\n", v.ident(rng), v.ident(rng));
    }
    let mut depth = 1usize;
    while s.len() < target {
        let ind = "  ".repeat(depth.min(4));
        match lang {
            Lang::Php => match rng.below(10) {
                0 => {
                    s.push_str(&ind);
                    s.push_str("/**\n");
                    s.push_str(&ind);
                    s.push_str(" * ");
                    v.sentence(rng, &mut s);
                    s.push('\n');
                    let _ = writeln!(
                        s,
                        "{ind} *\n{ind} * @param ${} \n{ind} *   The {} {}.\n{ind} */",
                        v.ident(rng),
                        v.ident(rng),
                        v.ident(rng)
                    );
                }
                1 => {
                    let _ = writeln!(
                        s,
                        "{ind}public function {}(${}, array ${} = []) {{",
                        v.ident(rng),
                        v.ident(rng),
                        v.ident(rng)
                    );
                    depth += 1;
                }
                2 | 3 => {
                    let _ = writeln!(
                        s,
                        "{ind}${} = $this->{}->{}(${}, '{}');",
                        v.ident(rng),
                        v.ident(rng),
                        v.ident(rng),
                        v.ident(rng),
                        v.ident(rng)
                    );
                }
                4 => {
                    let _ = writeln!(
                        s,
                        "{ind}if (isset(${}['{}']) && ${} !== NULL) {{",
                        v.ident(rng),
                        v.ident(rng),
                        v.ident(rng)
                    );
                    depth += 1;
                }
                5 => {
                    let _ = writeln!(s, "{ind}return ${};", v.ident(rng));
                }
                6 => {
                    let _ = writeln!(
                        s,
                        "{ind}'#{}' => $this->t('{}'),",
                        v.ident(rng),
                        v.ident(rng)
                    );
                }
                7 => {
                    let _ = writeln!(s, "{ind}// {}", v.ident(rng));
                }
                _ => {
                    if depth > 1 {
                        depth -= 1;
                        let _ = writeln!(s, "{}}}\n", "  ".repeat(depth.min(4)));
                    } else {
                        let _ = writeln!(s, "{ind}${} = {};", v.ident(rng), rng.below(1000));
                    }
                }
            },
            Lang::Js => match rng.below(6) {
                0 => {
                    let _ = writeln!(
                        s,
                        "{ind}Drupal.behaviors.{} = {{\n{ind}  attach: function (context, settings) {{",
                        v.ident(rng)
                    );
                    depth += 1;
                }
                1 | 2 => {
                    let _ = writeln!(
                        s,
                        "{ind}var {} = $(context).find('.{}').{}('{}');",
                        v.ident(rng),
                        v.ident(rng),
                        v.ident(rng),
                        v.ident(rng)
                    );
                }
                3 => {
                    let _ = writeln!(s, "{ind}// {}", v.ident(rng));
                }
                _ => {
                    if depth > 1 {
                        depth -= 1;
                        let _ = writeln!(s, "{}}}\n", "  ".repeat(depth.min(4)));
                    } else {
                        let _ = writeln!(s, "{ind}{}({});", v.ident(rng), v.ident(rng));
                    }
                }
            },
            Lang::Css => {
                let _ = writeln!(
                    s,
                    ".{} .{}-{} {{\n  margin: {}px {}px;\n  color: #{:06x};\n  display: {};\n}}\n",
                    v.ident(rng),
                    v.ident(rng),
                    v.ident(rng),
                    rng.below(40),
                    rng.below(40),
                    rng.next() & 0xffffff,
                    *rng.pick(&["block", "flex", "none", "inline-block"])
                );
            }
            Lang::Yml => {
                let _ = writeln!(
                    s,
                    "{}:\n  type: {}\n  label: '{}'\n  weight: {}",
                    v.ident(rng),
                    v.ident(rng),
                    v.ident(rng),
                    rng.below(50)
                );
            }
            Lang::Twig => {
                let _ = writeln!(
                    s,
                    "{{% if {} %}}\n  <div{{{{ attributes.addClass('{}') }}}}>{{{{ {} }}}}</div>\n{{% endif %}}",
                    v.ident(rng),
                    v.ident(rng),
                    v.ident(rng)
                );
            }
            Lang::Txt => {
                v.sentence(rng, &mut s);
                s.push('\n');
            }
        }
    }
    if let Lang::Js = lang {
        s.push_str("})(jQuery, Drupal, drupalSettings);\n");
    }
    s.into_bytes()
}

fn license_text(v: &Vocab, rng: &mut Rng) -> Vec<u8> {
    let mut s = String::from("GNU GENERAL PUBLIC LICENSE\nVersion 2, June 1991\n\n");
    while s.len() < 18_000 {
        v.sentence(rng, &mut s);
        s.push(if rng.below(4) == 0 { '\n' } else { ' ' });
    }
    s.into_bytes()
}

struct Writer {
    stats: GenStats,
}

impl Writer {
    fn dir(&mut self, p: &Path) {
        if !p.exists() {
            fs::create_dir_all(p).expect("create dir");
            self.stats.dirs += 1;
        }
    }
    fn file(&mut self, p: &Path, data: &[u8], media: bool) {
        let mut f = fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        f.write_all(data).expect("write");
        self.stats.files += 1;
        self.stats.bytes += data.len() as u64;
        if media {
            self.stats.media_files += 1;
            self.stats.media_bytes += data.len() as u64;
        } else {
            self.stats.code_files += 1;
            self.stats.code_bytes += data.len() as u64;
        }
    }
}

/// Generates the platform at `root` (which must not exist). `scale` 1.0 gives about 50,000
/// files and 800 MB; smaller scales shrink file counts and media volume proportionally.
pub fn generate(root: &Path, seed: u64, scale: f64) -> GenStats {
    assert!(!root.exists(), "{} exists already", root.display());
    let mut rng = Rng::new(seed);
    let vocab = Vocab::new(&mut rng);
    let license = license_text(&vocab, &mut rng);
    let mut w = Writer {
        stats: GenStats::default(),
    };
    w.dir(root);
    w.file(
        &root.join("index.php"),
        b"<?php\nuse Drupal\\Core\\DrupalKernel;\n$autoloader = require_once 'autoload.php';\n",
        false,
    );
    w.file(
        &root.join(".htaccess"),
        b"Options -Indexes\nRewriteEngine on\n",
        false,
    );
    w.file(
        &root.join("composer.json"),
        b"{\"name\": \"drupal/recommended-project\"}\n",
        false,
    );

    // Code: packages spread over the usual top-level folders.
    let code_files = (48_500.0 * scale).round() as usize;
    let tops: &[(&str, u32)] = &[
        ("core/modules", 30),
        ("core/lib/Drupal", 15),
        ("core/themes", 4),
        ("vendor", 30),
        ("modules/contrib", 12),
        ("themes/contrib", 3),
        ("sites/all/modules", 6),
    ];
    let weight_sum: u32 = tops.iter().map(|t| t.1).sum();
    let mut made = 0usize;
    let mut pkg_no = 0usize;
    while made < code_files {
        let mut r = rng.below(weight_sum as usize) as u32;
        let top = tops
            .iter()
            .find(|t| {
                if r < t.1 {
                    true
                } else {
                    r -= t.1;
                    false
                }
            })
            .expect("weighted pick")
            .0;
        let name = format!("{}_{pkg_no}", vocab.ident(&mut rng).to_lowercase());
        pkg_no += 1;
        let pkg = root.join(top).join(&name);
        let n = (10 + rng.below(180)).min(code_files - made);
        let subdirs = [
            "src",
            "src/Plugin",
            "src/Form",
            "js",
            "css",
            "templates",
            "config/install",
            "tests/src",
        ];
        w.dir(&pkg);
        w.file(&pkg.join("LICENSE.txt"), &license, false);
        made += 1;
        for i in 1..n {
            let lang = match rng.below(100) {
                0..=61 => Lang::Php,
                62..=77 => Lang::Js,
                78..=85 => Lang::Css,
                86..=91 => Lang::Yml,
                92..=96 => Lang::Twig,
                _ => Lang::Txt,
            };
            let sub = match lang {
                Lang::Js => "js",
                Lang::Css => "css",
                Lang::Yml => "config/install",
                Lang::Twig => "templates",
                _ => *rng.pick(&subdirs[..3]),
            };
            let sub = if rng.below(8) == 0 { subdirs[7] } else { sub };
            let dir = pkg.join(sub);
            w.dir(&dir);
            let size = rng.lognormal(4_000.0, 1.1).clamp(60.0, 600_000.0) as usize;
            let body = code_text(&vocab, &mut rng, lang, size);
            let file = dir.join(format!("{}{i}.{}", vocab.ident(&mut rng), lang.ext()));
            w.file(&file, &body, false);
        }
        made += n.saturating_sub(1);
    }
    // A vendored library copied twice (dedup across folders, as composer setups do).
    let lib_src = root.join("vendor/symfony_dup/polyfill");
    w.dir(&lib_src);
    let mut lib = Vec::new();
    for i in 0..((40.0 * scale).ceil() as usize) {
        let body = code_text(&vocab, &mut rng, Lang::Php, 6_000);
        let name = format!("Polyfill{i}.php");
        w.file(&lib_src.join(&name), &body, false);
        lib.push((name, body));
    }
    let lib_copy = root.join("core/assets/vendor/polyfill");
    w.dir(&lib_copy);
    for (name, body) in &lib {
        w.file(&lib_copy.join(name), body, false);
    }

    // Fixed Drupal bits.
    w.dir(&root.join("sites/default"));
    w.file(
        &root.join("sites/sites.php"),
        b"<?php\n$sites = [];\n",
        false,
    );
    w.file(
        &root.join("sites/default/default.settings.php"),
        &code_text(&vocab, &mut rng, Lang::Php, 30_000),
        false,
    );
    w.dir(&root.join("sites/all/libraries/empty"));
    symlink("../core/lib", root.join("sites/all/libraries/core-lib")).expect("symlink");

    // The site: settings, generated css/js aggregates (text) and media uploads (noise).
    let site = root.join("sites").join(SITE_URI);
    w.dir(&site);
    w.file(
        &site.join("settings.php"),
        format!("<?php\n$settings['hash_salt'] = '{:016x}';\n", rng.next()).as_bytes(),
        false,
    );
    for (sub, lang) in [("files/css", Lang::Css), ("files/js", Lang::Js)] {
        let d = site.join(sub);
        w.dir(&d);
        for i in 0..((60.0 * scale).ceil() as usize) {
            let size = rng.lognormal(40_000.0, 0.8) as usize;
            let body = code_text(&vocab, &mut rng, lang, size);
            w.file(
                &d.join(format!(
                    "{lang_ext}_{i:04x}.{lang_ext}",
                    lang_ext = lang.ext()
                )),
                &body,
                false,
            );
        }
    }
    let media_dirs = [
        "files/inline-images",
        "files/2023-11",
        "files/2024-03",
        "files/2024-08",
        "files/styles/thumbnail/public",
        "files/styles/large/public",
        "files/documents",
    ];
    for d in media_dirs {
        w.dir(&site.join(d));
    }
    w.dir(&site.join("private/empty"));
    let media_target = (440_000_000.0 * scale) as u64;
    let mut media = 0u64;
    let mut buf = Vec::new();
    let mut i = 0;
    while media < media_target {
        let (dir, size) = if rng.below(400) == 0 {
            // A video or a large PDF now and then: more than 8 MiB, streamed by the chunker.
            ("files/documents", rng.lognormal(16_000_000.0, 0.4) as usize)
        } else {
            let d = *rng.pick(&media_dirs[..6]);
            let median = if d.contains("thumbnail") {
                12_000.0
            } else {
                140_000.0
            };
            (
                d,
                rng.lognormal(median, 0.9).clamp(500.0, 6_000_000.0) as usize,
            )
        };
        let size = size.min((media_target - media) as usize + 500);
        buf.clear();
        rng.fill_noise(&mut buf, size);
        let ext = if dir.contains("documents") {
            "pdf"
        } else {
            *rng.pick(&["jpg", "png", "webp"])
        };
        w.file(
            &site.join(dir).join(format!("upload_{i:05}.{ext}")),
            &buf,
            true,
        );
        media += size as u64;
        i += 1;
    }
    w.stats
}

/// Appends to or rewrites some files (for "a few files changed" runs); deterministic.
pub fn touch_some(root: &Path, seed: u64, n: usize) -> Vec<PathBuf> {
    let mut rng = Rng::new(seed);
    let mut all: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    let mut out = Vec::new();
    for _ in 0..n.min(all.len()) {
        let i = rng.below(all.len());
        let p = all.swap_remove(i);
        let mut f = fs::OpenOptions::new().append(true).open(&p).expect("open");
        writeln!(f, "// changed {}", rng.next()).expect("append");
        out.push(p);
    }
    out
}
