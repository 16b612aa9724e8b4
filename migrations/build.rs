//! Rebuild when a migration changes: `embed_migrations!` reads the folders at compile time.
fn main() {
    for dir in ["sqlite", "postgres", "mysql"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
