//! Rebuilds when a migration is added: `embed_migrations!` reads the folder, and cargo does
//! not otherwise notice a new directory in it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
