//! The JSON formats of SGLang and vLLM-Ascend (header section "interop").
use std::os::raw::c_char;
use std::ptr;

use crate::{check, library_string, sys, Error, LibraryBuffer, Placement, Result, Status};

/// A load matrix read from a file: `loads` is `[num_layers][num_experts]` row-major, ready for
/// [`crate::Planner::plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoadMatrix {
    pub loads: Vec<f64>,
    pub num_layers: u32,
    pub num_experts: u32,
}

/// Reads SGLang's expert load file (`{"logical_count": [layers][E]}`, or `[steps][layers][E]`
/// with the steps summed); other keys are ignored. `Status::Corrupt` names the bad entry.
pub fn loads_from_sglang_json(json: impl AsRef<[u8]>) -> Result<LoadMatrix> {
    let json = json.as_ref();
    let mut data: *mut f64 = ptr::null_mut();
    let (mut num_layers, mut num_experts) = (0u32, 0u32);
    // SAFETY: the text is valid for its length (no NUL needed); outputs are valid pointers.
    check(unsafe {
        sys::eplb_loads_from_sglang_json(
            json.as_ptr().cast(),
            json.len(),
            &mut data,
            &mut num_layers,
            &mut num_experts,
        )
    })?;
    let buffer = LibraryBuffer(data.cast());
    let len = (num_layers as usize) * (num_experts as usize);
    if len > 0 && data.is_null() {
        return Err(Error {
            status: Status::Internal,
            message: format!("libeplb returned no buffer for {num_layers} x {num_experts} loads"),
        });
    }
    let loads = if len == 0 {
        Vec::new()
    } else {
        // SAFETY: the library wrote num_layers * num_experts doubles there (a product that fits
        // in memory, so no overflow); freed by `buffer`.
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    };
    drop(buffer);
    Ok(LoadMatrix {
        loads,
        num_layers,
        num_experts,
    })
}

/// Calls a `to_*_json` function and copies its library-owned text.
fn text_from(
    call: impl FnOnce(*mut *mut c_char, *mut usize) -> sys::eplb_status,
) -> Result<String> {
    let mut text: *mut c_char = ptr::null_mut();
    let mut len = 0usize;
    check(call(&mut text, &mut len))?;
    library_string(LibraryBuffer(text.cast()), len)
}

impl Placement {
    /// SGLang's placement document (`{"physical_to_logical_map": ...}`, for
    /// `--init-expert-location`), `num_dense_layers` trivial rows first.
    pub fn to_sglang_json(&self, num_dense_layers: u32) -> Result<String> {
        // SAFETY: valid handle and output pointers; the text is copied, then freed.
        text_from(|text, len| unsafe {
            sys::eplb_placement_to_sglang_json(self.raw, num_dense_layers, text, len)
        })
    }

    /// Reads SGLang's placement document for `num_nodes` nodes and `num_gpus` GPUs, skipping
    /// the first `num_dense_layers` rows; `num_logical_experts` 0 means one more than the
    /// largest id. `Status::Corrupt` names the row, column and value of a bad entry.
    pub fn from_sglang_json(
        json: impl AsRef<[u8]>,
        num_logical_experts: u32,
        num_nodes: u32,
        num_gpus: u32,
        num_dense_layers: u32,
    ) -> Result<Placement> {
        let json = json.as_ref();
        let mut raw = ptr::null_mut();
        // SAFETY: the text is valid for its length and not retained.
        check(unsafe {
            sys::eplb_placement_from_sglang_json(
                json.as_ptr().cast(),
                json.len(),
                num_logical_experts,
                num_nodes,
                num_gpus,
                num_dense_layers,
                &mut raw,
            )
        })?;
        Ok(Placement { raw })
    }

    /// vLLM-Ascend's expert map document (`{"moe_layer_count": ..., "layer_list": ...}`).
    pub fn to_vllm_ascend_json(&self) -> Result<String> {
        // SAFETY: valid handle and output pointers; the text is copied, then freed.
        text_from(|text, len| unsafe {
            sys::eplb_placement_to_vllm_ascend_json(self.raw, text, len)
        })
    }

    /// Reads vLLM-Ascend's expert map document for `num_nodes` nodes (the GPUs are its
    /// devices); `num_logical_experts` 0 means one more than the largest id.
    pub fn from_vllm_ascend_json(
        json: impl AsRef<[u8]>,
        num_logical_experts: u32,
        num_nodes: u32,
    ) -> Result<Placement> {
        let json = json.as_ref();
        let mut raw = ptr::null_mut();
        // SAFETY: the text is valid for its length and not retained.
        check(unsafe {
            sys::eplb_placement_from_vllm_ascend_json(
                json.as_ptr().cast(),
                json.len(),
                num_logical_experts,
                num_nodes,
                &mut raw,
            )
        })?;
        Ok(Placement { raw })
    }
}
