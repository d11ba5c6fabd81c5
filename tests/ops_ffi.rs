//! The operator calls of the C ABI: vault_load_config, vault_provider_by_name,
//! vault_reload_config, vault_stats_json, vault_stats_all_json, vault_metrics_prometheus and
//! vault_set_log_callback, as a C host calls them (through the `extern "C"` functions).

mod common;

use std::ffi::{c_char, c_void, CStr, CString};
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

use common::Idp;
use credvault::ffi::*;
use credvault::Status;
use serde_json::{json, Value};

static EVENTS: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());
/// One configuration file is loaded per process: the tests that load one run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

unsafe extern "C" fn record(userdata: *mut c_void, level: i32, event: *const c_char) {
    assert_eq!(userdata as usize, 0xC0FFEE, "userdata passed through");
    // SAFETY: the library passes a NUL-terminated string valid during the call.
    let text = unsafe { CStr::from_ptr(event) }
        .to_str()
        .unwrap()
        .to_string();
    EVENTS.lock().unwrap().push((level, text));
}

fn take_string(p: *mut c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: a string returned by the library, freed once.
    unsafe {
        let s = CStr::from_ptr(p).to_str().unwrap().to_string();
        vault_string_free(p);
        s
    }
}

#[test]
fn config_stats_metrics_and_log_callback_through_the_c_abi() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = std::env::temp_dir().join(format!("credvault-opsffi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_path = dir.join("vgs.secret");
    std::fs::write(&secret_path, "demo-vgs-secret\n").unwrap();
    std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg_path = dir.join("credvault.json");
    let write_cfg = |extra: bool| {
        let mut providers = json!({"vgs-eu": {"preset": "vgs",
            "token_url": idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
            "client_id": "demo-vgs-client", "client_secret": {"file": secret_path}}});
        if extra {
            providers["partner"] = json!({"preset": "vipps-partner",
                "token_url": idp.url("/vipps/miami/v1/token"),
                "client_id": "demo-partner-client", "client_secret": "demo-partner-secret"});
        }
        std::fs::write(&cfg_path, json!({ "providers": providers }).to_string()).unwrap();
    };
    write_cfg(false);
    let path = CString::new(cfg_path.to_str().unwrap()).unwrap();

    // SAFETY: every pointer is NULL or valid, every string NUL-terminated.
    unsafe {
        assert_eq!(
            vault_set_log_callback(Some(record), 20, 0xC0FFEE as *mut c_void),
            Status::Ok
        );
        assert_eq!(vault_load_config(path.as_ptr()), Status::Ok);
        let h = vault_provider_by_name(c"vgs-eu".as_ptr());
        assert_ne!(h, 0);
        assert_eq!(vault_provider_by_name(c"nope".as_ptr()), 0);
        assert_eq!(vault_provider_by_name(std::ptr::null()), 0);
        assert_eq!(vault_last_status(), Status::InvalidArgument);

        for _ in 0..3 {
            let t = vault_get_token(h);
            assert!(!t.is_null());
            vault_token_free(t);
        }
        let stats: Value = serde_json::from_str(&take_string(vault_stats_json(h))).unwrap();
        assert_eq!(stats["provider"], "vgs-eu");
        assert_eq!(
            stats["endpoint"],
            idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token")
        );
        assert_eq!(stats["client_id"], "demo-vgs-client");
        assert_eq!(stats["tokens_fetched"], 1);
        assert_eq!(
            stats["cache_hits"], 2,
            "C ABI hits are counted, memo hits included"
        );
        assert!(stats["token_remaining_s"].as_f64().unwrap() > 0.0);
        assert!(vault_stats_json(12345).is_null());
        assert_eq!(vault_last_status(), Status::InvalidHandle);

        write_cfg(true);
        assert_eq!(vault_reload_config(), Status::Ok);
        assert_eq!(
            vault_provider_by_name(c"vgs-eu".as_ptr()),
            h,
            "unchanged: same handle"
        );
        assert_ne!(vault_provider_by_name(c"partner".as_ptr()), 0);
        let all: Value = serde_json::from_str(&take_string(vault_stats_all_json())).unwrap();
        let names: Vec<&str> = all["providers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["provider"].as_str())
            .collect();
        assert!(
            names.contains(&"vgs-eu") && names.contains(&"partner"),
            "{names:?}"
        );
        assert!(
            all["scheduler"]["max_workers"].as_u64().unwrap() >= 1,
            "{all}"
        );
        assert!(all["scheduler"]["queued"].as_u64().is_some());

        let metrics = take_string(vault_metrics_prometheus());
        assert!(
            metrics.contains("credvault_tokens_fetched_total{provider=\"vgs-eu\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("\ncredvault_refresh_queue_length "),
            "{metrics}"
        );

        std::fs::write(&cfg_path, "{ broken").unwrap();
        assert_eq!(vault_reload_config(), Status::InvalidConfig);
        let msg = CStr::from_ptr(vault_last_error()).to_str().unwrap();
        assert!(msg.contains("not valid JSON"), "{msg}");
        assert_eq!(
            vault_provider_by_name(c"vgs-eu".as_ptr()),
            h,
            "a broken file changes nothing"
        );

        assert_eq!(
            vault_set_log_callback(None, 0, std::ptr::null_mut()),
            Status::Ok
        );
    }
    let events = EVENTS.lock().unwrap().clone();
    let kinds: Vec<Value> = events
        .iter()
        .map(|(_, t)| serde_json::from_str::<Value>(t).unwrap())
        .collect();
    assert!(events.iter().all(|(l, _)| *l >= 20), "min level honoured");
    assert!(kinds
        .iter()
        .any(|e| e["event"] == "fetch_finished" && e["provider"] == "vgs-eu"));
    assert!(kinds
        .iter()
        .any(|e| e["event"] == "config_reloaded" && e["ok"] == false));
    assert!(
        !kinds.iter().any(|e| e["event"] == "fetch_started"),
        "debug events filtered"
    );
    let all = format!("{events:?}");
    assert!(!all.contains("demo-vgs-secret") && !all.contains("demo-partner-secret"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A provider made with vault_provider_new is `handle:N` in stats and events alike, and a call
/// that only learns the size it needs (BUFFER_TOO_SMALL) is not a cache hit.
#[test]
fn unnamed_providers_and_size_probes() {
    let idp = Idp::start();
    let cfg = CString::new(
        json!({"preset": "vgs",
               "token_url": idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
               "client_id": "demo-vgs-client", "client_secret": "demo-vgs-secret"})
        .to_string(),
    )
    .unwrap();
    // SAFETY: valid strings and buffers of the stated sizes.
    unsafe {
        let h = vault_provider_new(cfg.as_ptr());
        assert_ne!(h, 0);
        let t = vault_get_token(h);
        assert!(!t.is_null());
        vault_token_free(t);
        let mut need = 0usize;
        for _ in 0..3 {
            let s = vault_get_token_into(
                h,
                std::ptr::null_mut(),
                0,
                &mut need,
                std::ptr::null_mut(),
                0,
            );
            assert_eq!(s, Status::BufferTooSmall);
        }
        let mut buf = vec![0 as c_char; need + 1];
        let s = vault_get_token_into(
            h,
            buf.as_mut_ptr(),
            buf.len(),
            &mut need,
            std::ptr::null_mut(),
            0,
        );
        assert_eq!(s, Status::Ok);
        let stats: Value = serde_json::from_str(&take_string(vault_stats_json(h))).unwrap();
        assert_eq!(stats["provider"], format!("handle:{h}"));
        assert_eq!(stats["cache_hits"], 1, "size probes are not hits: {stats}");
        assert_eq!(vault_provider_free(h), Status::Ok as i32);
    }
}

/// `vault_fill` keeps a value while its number names the cached token: after a reload swaps a
/// new provider in under the same handle (its generations start again), the old value must not
/// be taken for the new provider's token.
#[test]
fn fill_follows_a_provider_replaced_by_a_reload() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    idp.add_client(
        json!({"dialect": "oauth", "client_id": "fill-rot", "client_secret": "fill-old-1"}),
    );
    let dir = std::env::temp_dir().join(format!("credvault-fill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("credvault.json");
    let write = |secret: &str| {
        let cfg = json!({"providers": {"rot": {"token_url": idp.url("/oauth/token"),
            "client_id": "fill-rot", "client_secret": secret}}});
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    };
    write("fill-old-1");
    let path = CString::new(cfg_path.to_str().unwrap()).unwrap();
    let mut buf = vec![0 as c_char; 256];
    // SAFETY: the fill points at a live buffer of the stated size; strings are NUL-terminated.
    unsafe {
        assert_eq!(vault_load_config(path.as_ptr()), Status::Ok);
        let h = vault_provider_by_name(c"rot".as_ptr());
        let t = vault_get_token(h); // the first token is fetched by a blocking call
        assert!(!t.is_null());
        vault_token_free(t);
        let mut fill = VaultFill {
            provider: h,
            buf: buf.as_mut_ptr(),
            buf_len: buf.len(),
            generation: 0,
        };
        assert_eq!(vault_try_fill_token(&mut fill), Status::Ok);
        let first = CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_string();
        let held = fill.generation;

        idp.add_client(
            json!({"dialect": "oauth", "client_id": "fill-rot", "client_secret": "fill-new-2"}),
        );
        write("fill-new-2");
        assert_eq!(vault_reload_config(), Status::Ok);
        assert_eq!(vault_provider_by_name(c"rot".as_ptr()), h, "same handle");
        let t = vault_get_token(h);
        assert!(!t.is_null());
        vault_token_free(t);
        assert_eq!(vault_try_fill_token(&mut fill), Status::Ok);
        let now = CStr::from_ptr(buf.as_ptr()).to_str().unwrap().to_string();
        assert_ne!(
            fill.generation, held,
            "a new number for the new provider's token"
        );
        assert_ne!(
            now, first,
            "the new token was written, not the old one kept"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The scheduler's two process-wide settings through the C ABI, as the stats report them; out
/// of range is INVALID_ARGUMENT with a message, and changes nothing.
#[test]
fn scheduler_settings_through_the_c_abi() {
    let scheduler = || -> Value {
        let all: Value = serde_json::from_str(&take_string(vault_stats_all_json())).unwrap();
        all["scheduler"].clone()
    };
    assert_eq!(vault_set_refresh_workers(6), Status::Ok as i32);
    assert_eq!(vault_set_refresh_endpoint_limit(3), Status::Ok as i32);
    let s = scheduler();
    assert_eq!(
        (s["max_workers"].as_u64(), s["endpoint_limit"].as_u64()),
        (Some(6), Some(3))
    );
    assert!(s["peak_per_endpoint"].is_u64(), "{s}");
    for n in [0, 65, u32::MAX] {
        assert_eq!(vault_set_refresh_workers(n), Status::InvalidArgument as i32);
        assert_eq!(
            vault_set_refresh_endpoint_limit(n),
            Status::InvalidArgument as i32
        );
        // SAFETY: the thread's last error, a NUL-terminated string the library keeps.
        let msg = unsafe { CStr::from_ptr(vault_last_error()) }
            .to_str()
            .unwrap();
        assert!(msg.contains("out of range (1 to 64)"), "{msg}");
    }
    let s = scheduler();
    assert_eq!(
        (s["max_workers"].as_u64(), s["endpoint_limit"].as_u64()),
        (Some(6), Some(3))
    );
    assert_eq!(vault_set_refresh_workers(4), Status::Ok as i32);
    assert_eq!(vault_set_refresh_endpoint_limit(2), Status::Ok as i32);
}
