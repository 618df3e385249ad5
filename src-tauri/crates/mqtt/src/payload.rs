//! What is published under `vigil/<site>/<ward>/`: the core's view types
//! (`vigil_core::view`, the same the screen and the WebSocket feed carry), each with `t`,
//! the publishing ward's clock in epoch ms. An empty retained payload deletes a topic
//! (MQTT 5 §3.3.1.3): a device removed, a value that belongs to a discharged stay.

use serde::{Deserialize, Serialize};
use vigil_alarms::BedAlarmState;
use vigil_core::view::{BedView, DeviceView, News2View, ReadingView};

/// `<bed>/reading/<mdc>`, retained, QoS 0: the latest value. `t` is the reading's own time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingMsg {
    pub t: i64,
    pub reading: ReadingView,
}

/// `<bed>/alarms`, retained, QoS 1: the bed's whole alarm state. `version` increases per
/// bed (epoch µs of the change at the publisher, +1 when that would not increase), so a
/// subscriber keeps the highest it has seen and a duplicate or older delivery (QoS 1 is at
/// least once; a republish after reconnect) changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmsMsg {
    pub t: i64,
    pub version: u64,
    pub state: BedAlarmState,
}

/// `<bed>/news2`, retained, QoS 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct News2Msg {
    pub t: i64,
    pub news2: News2View,
}

/// `<bed>/device/<device>`, retained, QoS 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceMsg {
    pub t: i64,
    pub device: DeviceView,
}

/// `<bed>/bed`, retained, QoS 1 (label and admission: carries PHI, like the feed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BedMsg {
    pub t: i64,
    pub bed: BedView,
}

/// `status`, retained, QoS 1: `{"online":true,"t":…,"schema":1}` at connect and every
/// heartbeat; `{"online":false}` as the last will (broker-sent when the publisher vanishes)
/// and on a clean stop (with `t`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusMsg {
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<u32>,
}

/// The payload schema (the feed contract's `schema`).
pub const SCHEMA: u32 = 1;
