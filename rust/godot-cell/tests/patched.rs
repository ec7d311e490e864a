//! gdext builds against this cell, not the one on crates.io: the workspace's `[patch.crates-io]`
//! is in force (without it every call would pay gdext's blocking cell again, silently).
#![cfg(not(loom))]

#[test]
fn the_workspace_resolves_godot_cell_to_this_crate() {
    let lock_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock");
    let lock = std::fs::read_to_string(lock_file).expect("the workspace has a Cargo.lock");
    let packages: Vec<&str> = lock.split("[[package]]").collect();
    let cells: Vec<&&str> = packages
        .iter()
        .filter(|p| p.contains("name = \"godot-cell\""))
        .collect();
    assert_eq!(cells.len(), 1, "exactly one godot-cell in the build");
    assert!(
        !cells[0].contains("source ="),
        "godot-cell comes from a registry, not rust/godot-cell: {}",
        cells[0]
    );
    let core = packages
        .iter()
        .find(|p| p.contains("name = \"godot-core\""))
        .expect("gdext's godot-core is in the build");
    assert!(core.contains("\"godot-cell\""), "godot-core depends on it");
}
