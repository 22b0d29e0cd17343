//! ONNX protobuf walker, HDF5 model_config extraction and the Jinja template check.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rules) = parapet_supply::Rules::global() {
        let mut ctx = parapet_supply::Ctx::new(rules);
        parapet_supply::onnx::scan(&data, &mut ctx, None);
        parapet_supply::h5::scan_h5(&data, &mut ctx);
        parapet_supply::template::check(&String::from_utf8_lossy(data), &mut ctx, 0);
        let _ = parapet_supply::onnx::looks_like_onnx(data);
    }
});
