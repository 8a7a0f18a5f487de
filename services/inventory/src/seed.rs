//! The demo catalog: what a fresh `cargo xtask up` shows in the storefront.
//!
//! Applied at start when `INVENTORY_SEED_DEMO=true` **and the catalog is empty**, so it never
//! touches a catalog someone has edited, and starting again (or starting several replicas at
//! once) adds nothing: see [`crate::store::CatalogStore::seed`]. The products go through the
//! same parsing as `UpsertProduct` and are announced with `ProductUpdated` like any other.

use crate::{
    domain::{InvalidInput, ProductDraft},
    error::InventoryError,
    store::CatalogStore,
};

/// One demo product: SKU, name, description, price in euro cents, units in stock.
pub struct DemoProduct {
    pub sku: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub price_cents: i64,
    pub stock: i64,
}

const fn demo(
    sku: &'static str,
    name: &'static str,
    description: &'static str,
    price_cents: i64,
    stock: i64,
) -> DemoProduct {
    DemoProduct {
        sku,
        name,
        description,
        price_cents,
        stock,
    }
}

#[rustfmt::skip]
pub const DEMO_CATALOG: &[DemoProduct] = &[
    demo("MUG-CERAMIC-350", "Ceramic Mug 350 ml", "Stoneware mug with a matte glaze. Dishwasher and microwave safe.", 1290, 120),
    demo("MUG-ENAMEL-300", "Enamel Camp Mug", "Lightweight enamel steel mug for the campfire and the desk alike.", 1490, 80),
    demo("TEE-ORGANIC-M", "Organic Cotton T-Shirt (M)", "Heavyweight 180 g/m² organic cotton, relaxed fit, size M.", 2900, 60),
    demo("TEE-ORGANIC-L", "Organic Cotton T-Shirt (L)", "Heavyweight 180 g/m² organic cotton, relaxed fit, size L.", 2900, 55),
    demo("HOODIE-MERINO-M", "Merino Hoodie (M)", "Warm, breathable and odour-resistant 100% merino wool hoodie.", 11900, 25),
    demo("CAP-CANVAS-01", "Waxed Canvas Cap", "Six-panel cap in waxed cotton canvas with a leather strap.", 3400, 40),
    demo("BOTTLE-STEEL-750", "Insulated Steel Bottle 750 ml", "Double-walled stainless steel; keeps drinks cold 24 h or hot 12 h.", 3290, 150),
    demo("TOTE-CANVAS-01", "Canvas Tote Bag", "Sturdy 12 oz cotton canvas tote with an inner pocket.", 1890, 200),
    demo("NOTEBOOK-A5-DOT", "A5 Dotted Notebook", "192 pages of 100 g/m² fountain-pen-friendly paper, lay-flat binding.", 1650, 300),
    demo("PEN-FOUNTAIN-EF", "Fountain Pen, Extra Fine", "Aluminium body, steel nib, converter and two ink cartridges included.", 4500, 45),
    demo("KEYBOARD-MECH-TKL", "Mechanical Keyboard TKL", "Tenkeyless board with hot-swappable tactile switches and PBT keycaps.", 12900, 30),
    demo("MOUSE-WIRELESS-01", "Wireless Mouse", "Silent clicks, 2.4 GHz and Bluetooth, USB-C rechargeable.", 3990, 75),
    demo("HEADPHONES-ANC-01", "Noise-Cancelling Headphones", "Over-ear, active noise cancelling, 30 h battery, foldable.", 19900, 20),
    demo("LAMP-DESK-LED", "LED Desk Lamp", "Dimmable, adjustable colour temperature, with a USB charging port.", 5900, 35),
    demo("PLANT-POT-TERRA-14", "Terracotta Plant Pot 14 cm", "Hand-thrown terracotta pot with a drainage hole and saucer.", 990, 90),
    demo("CANDLE-SOY-CEDAR", "Soy Candle, Cedarwood", "Hand-poured soy wax candle, cotton wick, about 40 hours of burn time.", 2200, 65),
    demo("COFFEE-BEANS-1KG", "Espresso Beans 1 kg", "Medium-dark roast blend with notes of chocolate and hazelnut.", 2890, 110),
    demo("TEA-SENCHA-100G", "Japanese Sencha 100 g", "First-flush green tea from Shizuoka, grassy and sweet.", 1450, 70),
    demo("GRINDER-BURR-01", "Manual Burr Coffee Grinder", "Stainless steel conical burrs with 40 grind settings.", 6900, 18),
    demo("BACKPACK-ROLLTOP-20", "Roll-Top Backpack 20 l", "Water-resistant roll-top daypack with a padded laptop sleeve.", 8900, 28),
    demo("SOCKS-WOOL-3PK", "Wool Hiking Socks, 3 Pairs", "Cushioned merino blend socks for long days on the trail.", 2490, 130),
    demo("UMBRELLA-COMPACT", "Compact Umbrella", "Windproof frame, automatic open and close, fits in a bag.", 2700, 50),
    demo("PUZZLE-1000-MAP", "1000-Piece Puzzle: Old World Map", "Antique world map jigsaw puzzle, 68 × 48 cm when complete.", 2400, 40),
    demo("BOARDGAME-TRAINS", "Board Game: Night Trains", "Build rail routes across Europe; 2–5 players, about 60 minutes.", 3990, 22),
];

/// The demo catalog as drafts with their initial stock.
pub fn drafts() -> Result<Vec<(ProductDraft, i64)>, InvalidInput> {
    DEMO_CATALOG
        .iter()
        .map(|demo| {
            let draft = ProductDraft::parse(
                demo.sku,
                demo.name,
                demo.description,
                Some((demo.price_cents, "EUR")),
                true,
            )?;
            Ok((draft, demo.stock))
        })
        .collect()
}

/// Seeds an empty catalog; returns how many products were added (0 if it was not empty).
pub async fn apply(store: &CatalogStore) -> Result<usize, InventoryError> {
    store.seed(&drafts()?).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_demo_catalog_is_valid_and_large_enough() {
        let drafts = drafts().unwrap();
        assert!(drafts.len() >= 20);
        let skus: HashSet<_> = drafts.iter().map(|(draft, _)| draft.sku.clone()).collect();
        assert_eq!(skus.len(), drafts.len(), "SKUs are unique");
        for (draft, stock) in &drafts {
            assert!(*stock > 0, "{}", draft.sku);
            assert!(draft.price.amount_minor() > 0, "{}", draft.sku);
            assert_eq!(draft.price.currency().as_str(), "EUR");
            assert!(!draft.description.as_str().is_empty(), "{}", draft.sku);
        }
    }
}
