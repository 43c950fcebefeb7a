-- The wallet list's name search: the display name folded for comparison (lower case, accents
-- and other marks removed: "Zürich" is stored as "zurich"), so that a search ignores letter
-- case and accents the same way on both backends. The folding is done in Rust
-- (`domain::wallet::fold_name`), both on insert and for the search text.
--
-- Rows written before this column existed are filled in by the application right after the
-- migrations ran (`store::wallets::backfill_folded_names`); the partial index finds them.

ALTER TABLE wallet ADD COLUMN display_name_folded TEXT;

CREATE INDEX wallet_name_unfolded ON wallet (id) WHERE display_name_folded IS NULL;
