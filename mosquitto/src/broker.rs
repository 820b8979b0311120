//! The plugin's entry points as Mosquitto (plugin API 5) calls them: it registers only the
//! events the plugin decides (basic auth, ACL checks, ticks, disconnects) and turns the broker's
//! raw event data into the calls of [`Plugin`].
//!
//! Written here rather than taken from `mosquitto_plugin::create_dynamic_library!`, which
//! registers every event with a default answer (MQTT 5 extended authentication succeeding
//! without a password) and panics, aborting the broker, on a password that is not UTF-8. Here
//! an event registered is an event decided, bytes the plugin cannot read are refused, and a
//! panic becomes a refusal rather than crossing into C.

use crate::Plugin;
use mosquitto_plugin::{
    mosquitto, mosquitto_callback_register, mosquitto_callback_unregister, mosquitto_evt_acl_check,
    mosquitto_evt_basic_auth, mosquitto_evt_disconnect, mosquitto_opt,
    mosquitto_plugin_event_MOSQ_EVT_ACL_CHECK as ACL_CHECK,
    mosquitto_plugin_event_MOSQ_EVT_BASIC_AUTH as BASIC_AUTH,
    mosquitto_plugin_event_MOSQ_EVT_DISCONNECT as DISCONNECT,
    mosquitto_plugin_event_MOSQ_EVT_TICK as TICK, mosquitto_plugin_id_t, AccessLevel,
    AclCheckAccessLevel, Error, MOSQ_FUNC_generic_callback, MosquittoClient, MosquittoMessage,
    MosquittoOpt, Success,
};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What Mosquitto keeps for the plugin between calls (its `userdata`). Only ever shared: the
/// plugin is borrowed through its cell, because Mosquitto can call back into the plugin while a
/// call is under way (a log line the plugin writes is a `$SYS` message whose delivery is
/// checked at once); such a nested call is refused rather than given the plugin twice.
struct Registered {
    identifier: *mut mosquitto_plugin_id_t,
    plugin: RefCell<Plugin>,
}

type Callback = unsafe extern "C" fn(c_int, *mut c_void, *mut c_void) -> c_int;

/// The events the plugin answers, each with its callback.
const EVENTS: [(u32, Callback); 4] = [
    (BASIC_AUTH, on_basic_auth),
    (ACL_CHECK, on_acl_check),
    (TICK, on_tick),
    (DISCONNECT, on_disconnect),
];

/// The plugin API version this plugin speaks.
#[no_mangle]
pub extern "C" fn mosquitto_plugin_version(_count: c_int, _versions: *const c_int) -> c_int {
    5
}

/// # Safety
/// Called by Mosquitto once, with its own identifier, a place for the userdata and the
/// `plugin_opt_*` options.
#[no_mangle]
pub unsafe extern "C" fn mosquitto_plugin_init(
    identifier: *mut mosquitto_plugin_id_t,
    userdata: *mut *mut c_void,
    options: *mut mosquitto_opt,
    option_count: c_int,
) -> c_int {
    let opts = read_options(options, option_count);
    let Ok(plugin) = catch_unwind(AssertUnwindSafe(|| Plugin::init(opts))) else {
        return Error::Unknown.into();
    };
    let registered = Box::into_raw(Box::new(Registered {
        identifier,
        plugin: RefCell::new(plugin),
    }));
    *userdata = registered.cast();
    for (event, callback) in EVENTS {
        let callback: MOSQ_FUNC_generic_callback = Some(callback);
        let rc = mosquitto_callback_register(
            identifier,
            event as c_int,
            callback,
            std::ptr::null(),
            registered.cast(),
        );
        if rc != 0 {
            return rc;
        }
    }
    Success.into()
}

/// # Safety
/// Called by Mosquitto once, with the userdata `mosquitto_plugin_init` set.
#[no_mangle]
pub unsafe extern "C" fn mosquitto_plugin_cleanup(
    userdata: *mut c_void,
    _options: *mut mosquitto_opt,
    _option_count: c_int,
) -> c_int {
    if userdata.is_null() {
        return Success.into();
    }
    let registered = Box::from_raw(userdata.cast::<Registered>());
    for (event, callback) in EVENTS {
        let callback: MOSQ_FUNC_generic_callback = Some(callback);
        mosquitto_callback_unregister(
            registered.identifier,
            event as c_int,
            callback,
            std::ptr::null(),
        );
    }
    Success.into()
}

/// The options as text; one that is not UTF-8 is left out (and so takes its default).
unsafe fn read_options<'a>(options: *mut mosquitto_opt, count: c_int) -> MosquittoOpt<'a> {
    let mut read = MosquittoOpt::new();
    if options.is_null() {
        return read;
    }
    for i in 0..usize::try_from(count).unwrap_or(0) {
        let option = &*options.add(i);
        if let (Some(key), Some(value)) = (text(option.key), text(option.value)) {
            read.insert(key, value);
        }
    }
    read
}

/// A C string as text: `None` when it is null or not UTF-8.
unsafe fn text<'a>(ptr: *const c_char) -> Option<&'a str> {
    (!ptr.is_null())
        .then(|| CStr::from_ptr(ptr).to_str().ok())
        .flatten()
}

/// Runs one of the plugin's answers with its state; a panic, or a call made while another is
/// under way, answers `refused` instead.
unsafe fn answer(
    userdata: *mut c_void,
    refused: Error,
    decide: impl FnOnce(&mut Plugin) -> Result<Success, Error>,
) -> c_int {
    let registered = &*userdata.cast::<Registered>();
    let Ok(mut plugin) = registered.plugin.try_borrow_mut() else {
        return refused.into();
    };
    match catch_unwind(AssertUnwindSafe(|| decide(&mut plugin))) {
        Ok(Ok(success)) => success.into(),
        Ok(Err(error)) => error.into(),
        Err(_) => refused.into(),
    }
}

/// The connection behind an event, as the plugin's calls take it.
fn client_of(client: *mut mosquitto) -> MosquittoClient {
    MosquittoClient { client }
}

unsafe extern "C" fn on_basic_auth(_: c_int, event: *mut c_void, userdata: *mut c_void) -> c_int {
    let event = &*event.cast::<mosquitto_evt_basic_auth>();
    // MQTT passwords are bytes; the server's are text: bytes that are not UTF-8 are no
    // password the server gave.
    let username = (!event.username.is_null()).then(|| text(event.username));
    let password = (!event.password.is_null()).then(|| text(event.password));
    if username == Some(None) || password == Some(None) {
        return Error::Auth.into();
    }
    let client = client_of(event.client);
    answer(userdata, Error::Auth, |plugin| {
        plugin.username_password(&client, username.flatten(), password.flatten())
    })
}

unsafe extern "C" fn on_acl_check(_: c_int, event: *mut c_void, userdata: *mut c_void) -> c_int {
    let event = &*event.cast::<mosquitto_evt_acl_check>();
    let level: Option<AclCheckAccessLevel> = AccessLevel::from(event.access).into();
    let (Some(level), Some(topic)) = (level, text(event.topic)) else {
        return Error::AclDenied.into();
    };
    let payload: &[u8] = if event.payload.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(event.payload.cast(), event.payloadlen as usize)
    };
    let message = MosquittoMessage {
        topic,
        payload,
        qos: event.qos.into(),
        retain: event.retain,
    };
    let client = client_of(event.client);
    answer(userdata, Error::AclDenied, |plugin| {
        plugin.acl_check(&client, level, message)
    })
}

unsafe extern "C" fn on_tick(_: c_int, _event: *mut c_void, userdata: *mut c_void) -> c_int {
    let mut ended = Vec::new();
    let rc = answer(userdata, Error::Unknown, |plugin| {
        ended = plugin.tick();
        Ok(Success)
    });
    // Kicked once the plugin is no longer borrowed: Mosquitto may report the disconnect (to
    // `on_disconnect`) before the kick returns.
    for id in ended {
        let _ = mosquitto_plugin::mosquitto_calls::kick_client_by_clientid(&id, false);
    }
    rc
}

unsafe extern "C" fn on_disconnect(_: c_int, event: *mut c_void, userdata: *mut c_void) -> c_int {
    let event = &*event.cast::<mosquitto_evt_disconnect>();
    let client = client_of(event.client);
    answer(userdata, Error::Unknown, |plugin| {
        plugin.on_disconnect(&client, event.reason);
        Ok(Success)
    })
}
