#!/usr/bin/env python3
"""A fake BlueZ (org.bluez) for testing Vigil's real Bluetooth LE path without a radio.

btleplug on Linux never touches hardware: it speaks to bluetoothd over the D-Bus
*system* bus. This service owns ``org.bluez`` on a private bus (the test starts
its own dbus-daemon and points DBUS_SYSTEM_BUS_ADDRESS at it) and implements the
part of the BlueZ D-Bus API that btleplug 0.13 / bluez-async use:

* ``org.freedesktop.DBus.ObjectManager`` at ``/`` (dbus-fast provides
  GetManagedObjects and emits InterfacesAdded/InterfacesRemoved on export).
* ``org.bluez.Adapter1`` at ``/org/bluez/hci0`` with every property bluez-async
  requires (a missing one makes the adapter silently vanish from btleplug).
* ``org.bluez.Device1`` per device, ``GattService1`` / ``GattCharacteristic1`` /
  ``GattDescriptor1`` objects (exported on connect, removed on disconnect, as
  BlueZ does for devices that are not bonded), notifications as
  PropertiesChanged(Value) after StartNotify.

The test drives it with one JSON object per line on stdin and reads one JSON
reply per line on stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``).
"READY" is printed once ``org.bluez`` is owned. EOF on stdin stops the service.

Commands (``address`` is "AA:BB:CC:DD:EE:FF"; ``char`` a 16-bit UUID "2a37"):

* ``add_device``: address, name, rssi, services (["180d", "180a", ...]) and
  optionally ``dis`` ({"manufacturer", "model", "serial", "hardware", "firmware",
  "software", "system_id"}; ``system_id`` is 16 hex digits, the 8 bytes of
  System ID 0x2a23 as sent), ``battery`` (percent), ``paired`` (bool: Device1
  ``Paired`` and ``Bonded``, default false), ``records`` (hex glucose records sent in
  answer to an RACP "report all records"), ``known`` (true: exported at once, as
  a bonded device BlueZ remembers; default: only once discovery runs),
  ``clock_offset_s`` (the device's clock, served by Current Time 0x2a2b of
  service 1805, runs this many seconds ahead of the host's UTC clock; negative:
  behind; default 0). A write to 0x2a2b sets that clock, as on a device.
* ``notify``: address, char, hex; waits (``timeout`` s, default 10) until the
  client has enabled notifications on that characteristic, then sends. Replies
  with ``sent_us``: the wall-clock time (µs since the epoch) just before the
  signal was emitted, for latency measurements. With ``force`` true it is sent
  at once, notifications enabled or not (a device may notify a
  characteristic the client never subscribed to; BlueZ signals it all the same).
* ``set_dis``: address, dis: the Device Information served from the next
  connection on (the same address, another device).
* ``set_paired``: address, paired: the bonding state BlueZ reports.
* ``wait``: address, until = "connected" | "disconnected" | "notifying"
  (+ char), timeout.
* ``drop_link``: the device goes out of range for a moment (link loss).
* ``set_in_range``: address, in_range (false: connects fail with a timeout).
* ``refuse_connects``: address, count: the next ``count`` Connect calls fail.
* ``add_record``: address, hex: one more stored glucose record.
* ``power``: on (bool): the adapter is switched off / on (links drop on off).
* ``state``: address -> connected, connects (successful), attempts (all),
  notifying chars, paired, written values per char (hex), adapter powered/discovering.

Start with ``--no-adapter`` to serve org.bluez without any adapter.
Uses only asyncio and dbus-fast (tests/ble/requirements.txt).
"""

import asyncio
import json
import logging
import os
import struct
import sys
import time
from datetime import datetime, timedelta, timezone

from dbus_fast import BusType, DBusError, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.constants import NameFlag, RequestNameReply
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method

LOG = logging.getLogger("fake_bluez")

BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"
ADAPTER_PATH = "/org/bluez/hci0"

# Characteristics each service gets: (uuid16, flags). The measurement
# characteristics carry the properties their service specifications mandate
# (HRS, PLXS, HTS, BLS, WSS, GLS); RACP is write + indicate (GLS 1.0 §3.3.2.8).
PROFILES = {
    "180d": [("2a37", ["notify"]), ("2a38", ["read"])],
    "1822": [("2a5f", ["notify"]), ("2a5e", ["indicate"]), ("2a60", ["read"])],
    "1809": [("2a1c", ["indicate"]), ("2a1e", ["notify"])],
    "1810": [("2a35", ["indicate"]), ("2a36", ["notify"])],
    "181d": [("2a9d", ["indicate"])],
    "1808": [("2a18", ["notify"]), ("2a52", ["write", "indicate"])],
    "180f": [("2a19", ["read", "notify"])],
    "1805": [("2a2b", ["read", "write", "notify"])],
}
DIS_FIELDS = [
    ("manufacturer", "2a29"),
    ("model", "2a24"),
    ("serial", "2a25"),
    ("hardware", "2a27"),
    ("firmware", "2a26"),
    ("software", "2a28"),
]
SYSTEM_ID = "2a23"
DEFAULT_DIS = {"manufacturer": "Acme Medical", "model": "AM-1", "serial": "SN0001", "firmware": "1.0.0"}


def uuid128(short: str) -> str:
    short = short.lower()
    return f"0000{short}{BASE_UUID_SUFFIX}" if len(short) == 4 else short


def short_uuid(full: str) -> str:
    full = full.lower()
    if full.startswith("0000") and full.endswith(BASE_UUID_SUFFIX):
        return full[4:8]
    return full


def failed(msg: str) -> DBusError:
    return DBusError("org.bluez.Error.Failed", msg)


class Adapter(ServiceInterface):
    def __init__(self, fake: "Fake") -> None:
        super().__init__("org.bluez.Adapter1")
        self.fake = fake
        self.powered = True
        self.discovering = False
        self.alias = "vigil-fake"

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":
        return "00:AA:01:00:00:01"

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":
        return "vigil-fake"

    @dbus_property()
    def Alias(self) -> "s":
        return self.alias

    @Alias.setter
    def Alias(self, value: "s") -> None:
        self.alias = value

    @dbus_property(access=PropertyAccess.READ)
    def Class(self) -> "u":
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def Modalias(self) -> "s":
        return "usb:v1D6Bp0246d0548"

    @dbus_property()
    def Powered(self) -> "b":
        return self.powered

    @Powered.setter
    def Powered(self, value: "b") -> None:
        self.fake.set_powered(value)

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> "b":
        return self.discovering

    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Pairable(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> "as":
        return []

    @method()
    def SetDiscoveryFilter(self, properties: "a{sv}") -> None:
        # Deliberately ignored: BlueZ merges the filters of all its clients, so
        # a client still sees devices outside its own filter (and other
        # platforms ignore filters). Vigil must filter by itself.
        LOG.info("discovery filter %s", {k: v.value for k, v in properties.items()})

    @method()
    def StartDiscovery(self) -> None:
        if not self.powered:
            raise DBusError("org.bluez.Error.NotReady", "Resource Not Ready")
        if not self.discovering:
            self.discovering = True
            self.emit_properties_changed({"Discovering": True})
        self.fake.discover_all()

    @method()
    def StopDiscovery(self) -> None:
        if self.discovering:
            self.discovering = False
            self.emit_properties_changed({"Discovering": False})

    @method()
    def RemoveDevice(self, device: "o") -> None:
        self.fake.remove_device_path(device)

    @method()
    def GetDiscoveryFilters(self) -> "as":
        return ["UUIDs", "RSSI", "Transport", "DuplicateData"]


class Descriptor(ServiceInterface):
    def __init__(self, char_path: str, uuid16: str) -> None:
        super().__init__("org.bluez.GattDescriptor1")
        self.char_path = char_path
        self.uuid = uuid128(uuid16)
        self.value = b"\x00\x00"

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Characteristic(self) -> "o":
        return self.char_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> "ay":
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as":
        return ["read", "write"]

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":
        return self.value

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}") -> None:
        self.value = bytes(value)


class Characteristic(ServiceInterface):
    def __init__(self, device: "Device", service_path: str, uuid16: str, flags: list[str], value: bytes):
        super().__init__("org.bluez.GattCharacteristic1")
        self.device = device
        self.service_path = service_path
        self.uuid16 = uuid16
        self.flags = flags
        self.value = value
        self.notifying = False

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":
        return uuid128(self.uuid16)

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> "o":
        return self.service_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> "ay":
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> "b":
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as":
        return self.flags

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> "q":
        return 247

    def check_link(self) -> None:
        if not self.device.connected:
            raise failed("Not connected")

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":
        self.check_link()
        if "read" not in self.flags:
            raise DBusError("org.bluez.Error.NotPermitted", "Read not permitted")
        if self.uuid16 == "2a2b":
            self.value = self.device.current_time()
        # Like bluetoothd, a read refreshes the cached Value and signals it:
        # btleplug's notification stream sees reads too (the source must not
        # forward them twice).
        self.emit_properties_changed({"Value": self.value})
        return self.value

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}") -> None:
        self.check_link()
        if "write" not in self.flags and "write-without-response" not in self.flags:
            raise DBusError("org.bluez.Error.NotPermitted", "Write not permitted")
        value = bytes(value)
        self.device.written.setdefault(self.uuid16, []).append(value.hex())
        if self.uuid16 == "2a52":
            self.device.racp_request(self, value)
        else:
            if self.uuid16 == "2a2b":
                self.device.set_clock(value)
            self.value = value

    @method()
    def StartNotify(self) -> None:
        self.check_link()
        if "notify" not in self.flags and "indicate" not in self.flags:
            raise DBusError("org.bluez.Error.NotSupported", "Operation is not supported")
        if not self.notifying:
            self.notifying = True
            self.emit_properties_changed({"Notifying": True})

    @method()
    def StopNotify(self) -> None:
        if self.notifying:
            self.notifying = False
            self.emit_properties_changed({"Notifying": False})

    def send(self, value: bytes) -> None:
        """A notification / indication: BlueZ updates Value and signals it."""
        self.value = value
        self.emit_properties_changed({"Value": value})


class Service(ServiceInterface):
    def __init__(self, device_path: str, uuid16: str) -> None:
        super().__init__("org.bluez.GattService1")
        self.device_path = device_path
        self.uuid = uuid128(uuid16)

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> "o":
        return self.device_path

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> "ao":
        return []


class Device(ServiceInterface):
    def __init__(self, fake: "Fake", spec: dict) -> None:
        super().__init__("org.bluez.Device1")
        self.fake = fake
        self.address = spec["address"].upper()
        self.path = f"{ADAPTER_PATH}/dev_{self.address.replace(':', '_')}"
        self.local_name = spec.get("name")
        self.rssi = int(spec.get("rssi", -60))
        self.services = [s.lower() for s in spec.get("services", [])]
        self.set_dis(spec.get("dis", DEFAULT_DIS))
        self.battery = spec.get("battery")
        self.records = [bytes.fromhex(h) for h in spec.get("records", [])]
        self.clock_offset_s = float(spec.get("clock_offset_s", 0))
        self.exported = False
        self.in_range = True
        self.connected = False
        self.services_resolved = False
        self.paired = bool(spec.get("paired", False))
        self.trusted = False
        self.refuse = 0
        self.connects = 0
        self.attempts = 0
        self.written: dict[str, list[str]] = {}
        self.gatt_paths: list[str] = []
        self.chars: dict[str, Characteristic] = {}

    # -- Device1 properties (everything bluez-async requires, and the useful rest)
    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":
        return self.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":
        return self.local_name or ""

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> "s":
        return self.local_name or self.address.replace(":", "-")

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> "b":
        return self.paired

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> "b":
        return self.paired

    @dbus_property()
    def Trusted(self) -> "b":
        return self.trusted

    @Trusted.setter
    def Trusted(self, value: "b") -> None:
        self.trusted = value

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> "b":
        return self.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> "b":
        return self.services_resolved

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> "n":
        return self.rssi

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> "as":
        return [uuid128(s) for s in self.services]

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> "o":
        return ADAPTER_PATH

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> "a{sv}":
        return {}

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> "a{qv}":
        return {}

    # -- Device1 methods
    @method()
    async def Connect(self) -> None:
        self.attempts += 1
        if not self.fake.adapter.powered:
            raise DBusError("org.bluez.Error.NotReady", "Resource Not Ready")
        if self.connected:
            return
        if not self.in_range:
            await asyncio.sleep(0.2)
            raise failed("Page Timeout")
        if self.refuse > 0:
            self.refuse -= 1
            await asyncio.sleep(0.05)
            raise failed("le-connection-abort-by-local")
        self.connects += 1
        self.connected = True
        self.emit_properties_changed({"Connected": True})
        # Connect returns once the link is up; service discovery finishes a
        # moment later (btleplug waits for ServicesResolved).
        asyncio.get_running_loop().call_later(0.02, self.resolve_services)

    @method()
    def Disconnect(self) -> None:
        self.link_down()

    @method()
    def Pair(self) -> None:
        self.set_paired(True)

    @method()
    def CancelPairing(self) -> None:
        pass

    # -- behaviour
    def set_dis(self, dis: dict) -> None:
        self.dis = {uuid: dis[key].encode() for key, uuid in DIS_FIELDS if key in dis}
        if "system_id" in dis:
            self.dis[SYSTEM_ID] = bytes.fromhex(dis["system_id"])

    def set_paired(self, paired: bool) -> None:
        if paired != self.paired:
            self.paired = paired
            self.emit_properties_changed({"Paired": paired, "Bonded": paired})

    def resolve_services(self) -> None:
        if not self.connected or self.services_resolved:
            return
        self.export_gatt()
        self.services_resolved = True
        self.emit_properties_changed({"ServicesResolved": True})

    def export_gatt(self) -> None:
        bus = self.fake.bus
        handle = 0x0010
        all_services = list(self.services)
        if self.dis and "180a" not in all_services:
            all_services.append("180a")
        for svc in all_services:
            spath = f"{self.path}/service{handle:04x}"
            handle += 1
            bus.export(spath, Service(self.path, svc))
            self.gatt_paths.append(spath)
            if svc == "180a":
                chars = [(uuid, ["read"]) for uuid in self.dis]
            else:
                chars = PROFILES.get(svc, [])
            for uuid16, flags in chars:
                cpath = f"{spath}/char{handle:04x}"
                handle += 2
                ch = Characteristic(self, spath, uuid16, flags, self.initial_value(uuid16))
                bus.export(cpath, ch)
                self.gatt_paths.append(cpath)
                self.chars[uuid16] = ch
                if "notify" in flags or "indicate" in flags:
                    dpath = f"{cpath}/desc{handle:04x}"
                    handle += 1
                    bus.export(dpath, Descriptor(cpath, "2902"))
                    self.gatt_paths.append(dpath)

    def initial_value(self, uuid16: str) -> bytes:
        if uuid16 in self.dis:
            return self.dis[uuid16]
        if uuid16 == "2a19":
            return bytes([self.battery if self.battery is not None else 100])
        if uuid16 == "2a38":
            return b"\x01"  # body sensor location: chest
        if uuid16 == "2a60":
            return b"\x00\x00"
        if uuid16 == "2a2b":
            return self.current_time()
        return b""

    def clock(self) -> datetime:
        """The device's own (naive, local) clock."""
        return datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=self.clock_offset_s)

    def current_time(self) -> bytes:
        # Current Time (CTS 1.1 §3.1): Date Time, Day of Week (1 = Monday),
        # Fractions256, Adjust Reason (none).
        t = self.clock()
        fractions = t.microsecond * 256 // 1_000_000
        return struct.pack("<HBBBBBBBB", t.year, t.month, t.day, t.hour, t.minute, t.second,
                           t.isoweekday(), fractions, 0)

    def set_clock(self, value: bytes) -> None:
        try:
            year, month, day, hour, minute, second = struct.unpack_from("<HBBBBB", value)
            fractions = value[8] if len(value) > 8 else 0
            t = datetime(year, month, day, hour, minute, second, fractions * 1_000_000 // 256)
        except (struct.error, ValueError) as e:
            # CTS 1.1 §3.1.2.1: an invalid value is ignored with this error.
            raise DBusError("org.bluez.Error.Failed", f"Data field ignored: {e}")
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        self.clock_offset_s = (t - now).total_seconds()

    def link_down(self) -> None:
        """Link lost or closed: BlueZ reports ServicesResolved=false,
        Connected=false, and drops the GATT objects of an unbonded device."""
        if not self.connected:
            return
        self.connected = False
        for ch in self.chars.values():
            ch.notifying = False
        if self.services_resolved:
            self.services_resolved = False
            self.emit_properties_changed({"ServicesResolved": False})
        self.emit_properties_changed({"Connected": False})
        for path in reversed(self.gatt_paths):
            self.fake.bus.unexport(path)
        self.gatt_paths.clear()
        self.chars.clear()

    def racp_request(self, racp: Characteristic, value: bytes) -> None:
        # Record Access Control Point (GLS 1.0 §3.3.2.8 / GSS): opcode,
        # operator, operand. Answered with indications after the write.
        if not racp.notifying:
            raise DBusError("org.bluez.Error.Failed", "CCCD improperly configured")
        # The answer covers the records stored when the request came in, as on
        # a meter: a record added meanwhile (``add_record`` while the transfer
        # is still running) belongs to the next request, not to this one.
        # Iterating the live list instead let a test's next record slip into
        # the first download when the machine was busy.
        records = list(self.records)
        asyncio.get_running_loop().create_task(self.racp_answer(racp, value, records))

    async def racp_answer(self, racp: Characteristic, value: bytes, records: list[bytes]) -> None:
        await asyncio.sleep(0.01)
        op = value[0] if value else 0
        operator = value[1] if len(value) > 1 else 0
        if op == 0x01 and operator == 0x01:  # report stored records: all
            meas = self.chars.get("2a18")
            for rec in records:
                if not self.connected:
                    return
                if meas is not None and meas.notifying:
                    meas.send(rec)
                await asyncio.sleep(0.005)
            code = 0x01 if records else 0x06  # success / no records found
            answer = bytes([0x06, 0x00, 0x01, code])
        elif op == 0x04 and operator == 0x01:  # report number of stored records
            n = len(records)
            answer = bytes([0x05, 0x00, n & 0xFF, n >> 8])
        else:  # response code: op code not supported
            answer = bytes([0x06, 0x00, op, 0x02])
        if self.connected and racp.notifying:
            racp.send(answer)


class Fake:
    def __init__(self, bus: MessageBus, with_adapter: bool) -> None:
        self.bus = bus
        self.adapter = Adapter(self)
        self.devices: dict[str, Device] = {}
        if with_adapter:
            bus.export(ADAPTER_PATH, self.adapter)

    def export_device(self, dev: Device) -> None:
        if not dev.exported:
            dev.exported = True
            self.bus.export(dev.path, dev)

    def discover_all(self) -> None:
        for dev in self.devices.values():
            if dev.in_range:
                if dev.exported:
                    # A fresh advertisement: BlueZ updates RSSI.
                    dev.emit_properties_changed({"RSSI": dev.rssi})
                else:
                    self.export_device(dev)

    def remove_device_path(self, path: str) -> None:
        for addr, dev in list(self.devices.items()):
            if dev.path == path:
                dev.link_down()
                if dev.exported:
                    self.bus.unexport(dev.path)
                    dev.exported = False

    def set_powered(self, on: bool) -> None:
        if on == self.adapter.powered:
            return
        if not on:
            # bluetoothd disconnects every device before the controller goes down.
            for dev in self.devices.values():
                dev.link_down()
            if self.adapter.discovering:
                self.adapter.discovering = False
                self.adapter.emit_properties_changed({"Discovering": False})
        self.adapter.powered = on
        self.adapter.emit_properties_changed({"Powered": on})

    def device(self, cmd: dict) -> Device:
        addr = cmd["address"].upper()
        if addr not in self.devices:
            raise KeyError(f"no device {addr}")
        return self.devices[addr]

    async def handle(self, cmd: dict) -> dict:
        op = cmd.get("cmd")
        if op == "add_device":
            dev = Device(self, cmd)
            self.devices[dev.address] = dev
            if cmd.get("known") or self.adapter.discovering:
                self.export_device(dev)
            return {"path": dev.path}
        if op == "notify":
            dev = self.device(cmd)
            uuid16 = cmd["char"].lower()
            if cmd.get("force"):
                ready = lambda: uuid16 in dev.chars  # noqa: E731
            else:
                ready = lambda: uuid16 in dev.chars and dev.chars[uuid16].notifying  # noqa: E731
            if not await self.until(cmd, ready):
                raise TimeoutError(f"{dev.address} {uuid16} is not notifying")
            value = bytes.fromhex(cmd["hex"].replace(" ", ""))
            sent_us = time.time_ns() // 1000
            dev.chars[uuid16].send(value)
            return {"sent_us": sent_us}
        if op == "wait":
            dev = self.device(cmd)
            until = cmd["until"]
            if until == "connected":
                cond = lambda: dev.connected and dev.services_resolved  # noqa: E731
            elif until == "disconnected":
                cond = lambda: not dev.connected  # noqa: E731
            elif until == "notifying":
                uuid16 = cmd["char"].lower()
                cond = lambda: uuid16 in dev.chars and dev.chars[uuid16].notifying  # noqa: E731
            else:
                raise ValueError(f"unknown wait condition {until}")
            if not await self.until(cmd, cond):
                raise TimeoutError(f"{dev.address} not {until}")
            return {}
        if op == "set_dis":
            self.device(cmd).set_dis(cmd["dis"])
            return {}
        if op == "set_paired":
            self.device(cmd).set_paired(bool(cmd["paired"]))
            return {}
        if op == "drop_link":
            self.device(cmd).link_down()
            return {}
        if op == "set_in_range":
            dev = self.device(cmd)
            dev.in_range = bool(cmd["in_range"])
            if not dev.in_range:
                dev.link_down()
            return {}
        if op == "refuse_connects":
            self.device(cmd).refuse = int(cmd["count"])
            return {}
        if op == "add_record":
            self.device(cmd).records.append(bytes.fromhex(cmd["hex"]))
            return {}
        if op == "power":
            self.set_powered(bool(cmd["on"]))
            return {}
        if op == "state":
            dev = self.device(cmd)
            return {
                "connected": dev.connected,
                "connects": dev.connects,
                "attempts": dev.attempts,
                "notifying": sorted(u for u, c in dev.chars.items() if c.notifying),
                "paired": dev.paired,
                "written": dev.written,
                "powered": self.adapter.powered,
                "discovering": self.adapter.discovering,
            }
        raise ValueError(f"unknown command {op!r}")

    @staticmethod
    async def until(cmd: dict, cond) -> bool:
        deadline = asyncio.get_running_loop().time() + float(cmd.get("timeout", 10))
        while not cond():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True


async def main() -> None:
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("VIGIL_FAKE_BLUEZ_DEBUG") else logging.WARNING,
        format="fake_bluez: %(message)s",
        stream=sys.stderr,
    )
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    fake = Fake(bus, with_adapter="--no-adapter" not in sys.argv)
    reply = await bus.request_name("org.bluez", NameFlag.DO_NOT_QUEUE)
    if reply != RequestNameReply.PRIMARY_OWNER:
        raise SystemExit(f"could not own org.bluez: {reply}")

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("READY", flush=True)
    while line := await reader.readline():
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            out = {"ok": True, **(await fake.handle(cmd))}
        except Exception as e:  # reported to the test, which fails with it
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)
    bus.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
