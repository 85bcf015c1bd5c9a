//! Pictures of training and of gradients, drawn with `plotters` into PNG **and** SVG files
//! (1200×800 each).
//!
//! Text renders on any machine: DejaVu Sans is compiled into the binary (`include_bytes!`) and
//! registered with plotters' `ab_glyph` text renderer, so no system font or fontconfig is needed.
//! Every file is written atomically (temporary file, then rename): an error never leaves a
//! half-written picture behind.
//!
//! | drawer | input | pictures |
//! |---|---|---|
//! | [`plot_run`] | a run folder | `training_curves`, `grad_norm`, `update_ratio`, `grad_bars`, `activations`, `steps_<layer>` |
//! | [`plot_gradflow`] | `gradflow.csv` | `gradflow_unidirectional`, `gradflow_bidirectional` |
//! | [`saliency_logo`] | one record's scores | one logo |
//! | [`saliency_logos_from_tsv`] | a saliency TSV | one logo per record |
//!
//! How to read each picture: `docs/plots.md`.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

mod csv;
mod gradflow;
mod grads;
mod lines;
mod saliency;
mod steps;
pub mod style;
mod training;

pub use gradflow::plot_gradflow;
pub use saliency::{
    saliency_logo, saliency_logo_about, saliency_logos_from_tsv, saliency_logos_titled,
};

/// Width of every picture in pixels.
pub const WIDTH: u32 = 1200;
/// Height of every picture in pixels.
pub const HEIGHT: u32 = 800;

/// Draws everything a run folder holds: training curves from `history.csv`; gradient norms,
/// update-to-weight ratios, activation statistics and the per-tensor gradient bar chart from
/// `grads.csv`; one heat map of ‖∂L/∂h_t‖ per recurrent layer from `steps.csv`. Files that are
/// absent are skipped. Returns the files written (PNG and SVG of each picture), in `out_dir`
/// (created if needed).
///
/// A run folder with none of the three files is an error (it is probably not a run folder).
pub fn plot_run(run_dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    if !run_dir.is_dir() {
        return Err(Error::Usage(format!(
            "run folder {} does not exist or is not a folder",
            run_dir.display()
        )));
    }
    let history = run_dir.join("history.csv");
    let grads = run_dir.join("grads.csv");
    let steps = run_dir.join("steps.csv");
    if !history.exists() && !grads.exists() && !steps.exists() {
        return Err(Error::Usage(format!(
            "run folder {} has nothing to draw (no history.csv, grads.csv or steps.csv)",
            run_dir.display()
        )));
    }
    create_dir(out_dir)?;
    let mut written = Vec::new();
    if history.exists() {
        let best = training::best_epoch_from_json(&run_dir.join("history.json"));
        written.extend(training::plot_history(&history, best, out_dir)?);
    }
    if grads.exists() {
        written.extend(grads::plot_grads(&grads, out_dir)?);
    }
    if steps.exists() {
        written.extend(steps::plot_steps(&steps, out_dir)?);
    }
    Ok(written)
}

/// Draws the training curves of one `history.csv` (loss and accuracy/AUC per epoch, train vs
/// validation, best epoch marked) into `out_dir/training_curves.{png,svg}`. `best_epoch`
/// (1-based) overrides the choice of the best epoch (min `val_loss`, or min `loss` without
/// validation).
pub fn plot_history(csv: &Path, best_epoch: Option<usize>, out_dir: &Path) -> Result<Vec<PathBuf>> {
    create_dir(out_dir)?;
    training::plot_history(csv, best_epoch, out_dir)
}

/// Draws the pictures of one `grads.csv` (see [`plot_run`]) into `out_dir`.
pub fn plot_grads(csv: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    create_dir(out_dir)?;
    grads::plot_grads(csv, out_dir)
}

/// Draws one heat map per recurrent layer of one `steps.csv` (see [`plot_run`]) into `out_dir`.
pub fn plot_steps(csv: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    create_dir(out_dir)?;
    steps::plot_steps(csv, out_dir)
}

pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// An error while drawing (plotters' own errors are stringly typed across backends).
pub(crate) type DrawResult<T = ()> = std::result::Result<T, String>;

/// Turns any plotters error into a [`DrawResult`] error.
pub(crate) fn de<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Something drawable on any plotters backend.
pub(crate) trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

static FONTS: std::sync::Once = std::sync::Once::new();

/// DejaVu Sans, compiled in so text renders without any system font.
pub(crate) static FONT_REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold (titles, and the letters of saliency logos).
pub(crate) static FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Registers the bundled fonts under plotters' `sans-serif` family (once per process).
pub(crate) fn register_fonts() {
    FONTS.call_once(|| {
        // Both fonts are the bundled, valid TrueType files, so registration cannot fail; if it
        // ever did, text would be missing from PNGs but nothing would panic.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_REGULAR);
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, FONT_BOLD);
    });
}

/// Draws `fig` into `out_dir/{stem}.png` and `out_dir/{stem}.svg` (each written atomically) and
/// returns both paths.
pub(crate) fn save(fig: &impl Figure, out_dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    let png = out_dir.join(format!("{stem}.png"));
    let svg = out_dir.join(format!("{stem}.svg"));
    save_png(fig, &png)?;
    save_svg(fig, &svg)?;
    Ok(vec![png, svg])
}

fn draw_error(path: &Path, msg: String) -> Error {
    Error::io(
        path,
        std::io::Error::other(format!("cannot draw the picture: {msg}")),
    )
}

/// Renders `fig` into a PNG file (atomically).
pub(crate) fn save_png(fig: &impl Figure, path: &Path) -> Result<()> {
    register_fonts();
    let mut buf = vec![255u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(de)
            .and_then(|_| fig.draw(&root))
            .and_then(|_| root.present().map_err(de))
            .map_err(|m| draw_error(path, m))?;
    }
    let mut bytes = Vec::new();
    {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(&buf, WIDTH, HEIGHT, image::ColorType::Rgb8)
            .map_err(|e| draw_error(path, e.to_string()))?;
    }
    crate::weights::write_atomic(path, &bytes)
}

/// Renders `fig` into an SVG file (atomically).
pub(crate) fn save_svg(fig: &impl Figure, path: &Path) -> Result<()> {
    register_fonts();
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(de)
            .and_then(|_| fig.draw(&root))
            .and_then(|_| root.present().map_err(de))
            .map_err(|m| draw_error(path, m))?;
    }
    crate::weights::write_atomic(path, s.as_bytes())
}

/// A file-name-safe version of a label (`layers.3` → `layers.3`, `a/b c` → `a_b_c`).
pub(crate) fn file_stem(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unnamed".into()
    } else {
        s
    }
}
