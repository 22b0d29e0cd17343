//! HDF5 attribute reading (Keras `.h5`): the bounded hdf5-reader path and the scan on top.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parapet_supply::h5::read_keras(std::sync::Arc::new(data.to_vec()));
    if let Ok(rules) = parapet_supply::Rules::global() {
        let mut ctx = parapet_supply::Ctx::new(rules);
        parapet_supply::h5::scan_h5(&data, &mut ctx);
    }
});
