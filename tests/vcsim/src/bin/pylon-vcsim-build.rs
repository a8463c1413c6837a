//! Builds (or finds) the simulator launcher and prints its path, so that test setup
//! can build it ahead of the tests: `cargo run -p pylon-vcsim --bin pylon-vcsim-build`.

fn main() {
    println!("{}", pylon_vcsim::launcher_path().display());
}
