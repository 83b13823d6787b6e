//! A QR text drawn as a QR symbol (specs/presentation.md §1): alphanumeric mode, error correction
//! level M (L for a text over M's 3,391 characters), the smallest version that holds it, a quiet
//! zone of four modules.

use image::{GrayImage, Luma};
use qrcode::{Color, EcLevel, QrCode, Version};

/// White modules around the symbol, as ISO/IEC 18004 asks.
const QUIET_ZONE: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum SymbolError {
    #[error("no QR symbol holds {0} characters")]
    TooLong(usize),
    #[error("cannot encode the PNG: {0}")]
    Png(String),
}

/// One QR symbol.
pub struct Symbol {
    code: QrCode,
}

impl Symbol {
    /// The symbol of `text` (a QR text from [`encode`](super::encode)).
    pub fn new(text: &str) -> Result<Symbol, SymbolError> {
        QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
            .or_else(|_| QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L))
            .map(|code| Symbol { code })
            .map_err(|_| SymbolError::TooLong(text.len()))
    }

    /// The error correction level: `M`, or `L` for the longest texts.
    pub fn level(&self) -> char {
        match self.code.error_correction_level() {
            EcLevel::L => 'L',
            EcLevel::M => 'M',
            EcLevel::Q => 'Q',
            EcLevel::H => 'H',
        }
    }

    /// The QR version, 1 to 40.
    pub fn version(&self) -> i16 {
        match self.code.version() {
            Version::Normal(n) | Version::Micro(n) => n,
        }
    }

    /// Modules on a side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.code.width()
    }

    pub fn svg(&self) -> String {
        self.code
            .render::<qrcode::render::svg::Color>()
            .quiet_zone(true)
            .min_dimensions(256, 256)
            .build()
    }

    /// A greyscale PNG, `scale` pixels a module.
    pub fn png(&self, scale: u32) -> Result<Vec<u8>, SymbolError> {
        let scale = scale.max(1);
        let width = u32::try_from(self.width()).map_err(|e| SymbolError::Png(e.to_string()))?;
        let side = (width + 2 * QUIET_ZONE) * scale;
        let colors = self.code.to_colors();
        let inside = QUIET_ZONE..QUIET_ZONE + width;
        let image = GrayImage::from_fn(side, side, |x, y| {
            let (mx, my) = (x / scale, y / scale);
            let dark = inside.contains(&mx)
                && inside.contains(&my)
                && colors
                    .get(((my - QUIET_ZONE) * width + (mx - QUIET_ZONE)) as usize)
                    .is_some_and(|c| *c == Color::Dark);
            Luma([if dark { 0 } else { 255 }])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image
            .write_to(&mut out, image::ImageFormat::Png)
            .map_err(|e| SymbolError::Png(e.to_string()))?;
        Ok(out.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_licence_sized_text_takes_the_smallest_version_at_level_m() -> Result<(), SymbolError> {
        // 1,026 alphanumeric characters: version 21 at level M holds 1,085, version 20 only 1,016.
        let text = format!("TB1:{}", "A".repeat(1022));
        let symbol = Symbol::new(&text)?;
        assert_eq!(
            (symbol.version(), symbol.width(), symbol.level()),
            (21, 101, 'M')
        );
        assert!(symbol.svg().starts_with("<?xml"));
        let png = symbol.png(2)?;
        assert!(png.starts_with(b"\x89PNG"));
        let image = image::load_from_memory(&png)
            .map_err(|e| SymbolError::Png(e.to_string()))?
            .into_luma8();
        assert_eq!(image.width(), (101 + 8) * 2);
        // The quiet zone is white and the top-left finder pattern's corner dark.
        assert_eq!(image.get_pixel(0, 0).0, [255]);
        assert_eq!(image.get_pixel(8, 8).0, [0]);
        // Past level M's 3,391 characters, level L up to 4,296; beyond that, nothing.
        let long = Symbol::new(&format!("TB1:{}", "A".repeat(3400)))?;
        assert_eq!(long.level(), 'L');
        let longest = Symbol::new(&format!("TB1:{}", "A".repeat(4292)))?;
        assert_eq!((longest.version(), longest.level()), (40, 'L'));
        assert!(matches!(
            Symbol::new(&"A".repeat(4297)),
            Err(SymbolError::TooLong(4297))
        ));
        Ok(())
    }
}
