//! Per-profile vectors: every flag combination, optional fields, status bits,
//! and truncated / over-long / inconsistent payloads with their offsets.

use crate::{assert_invalid, assert_trailing, assert_truncated, dec, err, hex, try_dec, vals};

/// 2024-03-15 10:30:05 as a Date Time.
const TIME: &str = "E8 07 03 0F 0A 1E 05";
const TIME_STR: &str = "2024-03-15 10:30:05";

fn time_of(d: &vigil_gatt::Decoded) -> Option<String> {
    d.device_time.map(|t| t.to_string())
}

mod heart_rate {
    use super::*;
    use vigil_gatt::{DecodeError, SensorContact};

    #[test]
    fn uint16_format() {
        let d = dec("2A37", "01 2C 01");
        assert_eq!(vals(&d), vec![(147842, Some(300.0), "/min")]);
        assert_eq!(dec("2A37", "01 48 00").measurements[0].value, Some(72.0));
    }

    #[test]
    fn sensor_contact_states() {
        let cases = [
            ("00 50", SensorContact::NotSupported),
            ("02 50", SensorContact::NotSupported), // bit1 alone: not supported
            ("04 50", SensorContact::NotDetected),
            ("06 50", SensorContact::Detected),
        ];
        for (payload, contact) in cases {
            let d = dec("2A37", payload);
            assert_eq!(d.sensor_contact, Some(contact), "{payload}");
            assert_eq!(contact.trustworthy(), contact != SensorContact::NotDetected);
            // The value is kept either way; the pipeline decides.
            assert_eq!(d.measurements[0].value, Some(80.0));
        }
        let d = dec("2A37", "04 50");
        assert_eq!(d.status, vec!["sensor contact not detected"]);
    }

    #[test]
    fn energy_expended_and_rr() {
        let d = dec("2A37", "08 48 10 27");
        assert_eq!(d.energy_expended_kj, Some(10_000));
        let d = dec("2A37", "19 48 00 E8 03 00 04 00 02 00 03");
        assert_eq!(d.measurements[0].value, Some(72.0));
        assert_eq!(d.energy_expended_kj, Some(1000));
        assert_eq!(d.rr_intervals_s, vec![1.0, 0.5, 0.75]);
    }

    #[test]
    fn every_flag_combination() {
        for low in 0u8..32 {
            for reserved in [0u8, 0xE0] {
                let flags = low | reserved;
                let mut p = vec![flags];
                if flags & 1 != 0 {
                    p.extend(400u16.to_le_bytes());
                } else {
                    p.push(65);
                }
                if flags & 8 != 0 {
                    p.extend(1234u16.to_le_bytes());
                }
                if flags & 0x10 != 0 {
                    p.extend(800u16.to_le_bytes());
                    p.extend(1024u16.to_le_bytes());
                }
                let d = vigil_gatt::decode(vigil_gatt::Characteristic::HeartRateMeasurement, &p)
                    .unwrap_or_else(|e| panic!("flags {flags:#04x}: {e}"));
                let bpm = if flags & 1 != 0 { 400.0 } else { 65.0 };
                assert_eq!(d.measurements[0].value, Some(bpm));
                let contact = match (flags >> 1) & 3 {
                    2 => SensorContact::NotDetected,
                    3 => SensorContact::Detected,
                    _ => SensorContact::NotSupported,
                };
                assert_eq!(d.sensor_contact, Some(contact));
                assert_eq!(d.energy_expended_kj, (flags & 8 != 0).then_some(1234));
                let rr: Vec<f64> = if flags & 0x10 != 0 {
                    vec![800.0 / 1024.0, 1.0]
                } else {
                    vec![]
                };
                assert_eq!(d.rr_intervals_s, rr);
            }
        }
    }

    #[test]
    fn truncated() {
        assert_truncated(err("2A37", ""), 0, 1, 0);
        assert_truncated(err("2A37", "00"), 1, 1, 0);
        assert_truncated(err("2A37", "01"), 1, 2, 0);
        assert_truncated(err("2A37", "01 48"), 1, 2, 1);
        assert_truncated(err("2A37", "08 48 10"), 2, 2, 1);
        // RR flag set but no interval at all
        assert_truncated(err("2A37", "10 48"), 2, 2, 0);
        assert_truncated(err("2A37", "10 48 01"), 2, 2, 1);
    }

    #[test]
    fn over_long() {
        assert_trailing(err("2A37", "00 48 00"), 2, 1);
        assert_trailing(err("2A37", "01 48 00 00 00"), 3, 2);
        // RR intervals fill the rest in 2-byte units: an odd byte is left over.
        assert_trailing(err("2A37", "10 48 00 04 01"), 4, 1);
        assert_trailing(err("2A37", "18 48 10 27 00 04 00 02 07"), 8, 1);
    }

    #[test]
    fn error_messages_name_characteristic_field_and_offset() {
        let e = err("2A37", "01");
        assert_eq!(
            e.to_string(),
            "2a37 (Heart Rate Measurement): payload ends at byte 1 but field \
             'heart rate (uint16)' at byte 1 needs 2 bytes"
        );
        let e = err("2A37", "00 48 00");
        assert_eq!(
            e.to_string(),
            "2a37 (Heart Rate Measurement): 1 unexpected byte(s) after the last field, from byte 2"
        );
        assert!(matches!(e, DecodeError::TrailingBytes { .. }));
    }
}

mod plx {
    use super::*;

    #[test]
    fn continuous_all_fields() {
        // flags 0x1F: normal 97/72, fast 96/73, slow 98/71, measurement status
        // bit13, device status bits 5 + 15, PAI 2.5 %.
        let d = dec(
            "2A5F",
            "1F 61 00 48 00 60 00 49 00 62 00 47 00 00 20 20 80 00 19 F0",
        );
        assert_eq!(
            vals(&d),
            vec![
                (150456, Some(97.0), "%"),
                (149530, Some(72.0), "/min"),
                (150488, Some(2.5), "%"),
            ]
        );
        let sec: Vec<_> = d
            .secondary
            .iter()
            .map(|m| (m.mdc, m.value, m.qualifier))
            .collect();
        assert_eq!(
            sec,
            vec![
                (150456, Some(96.0), Some("fast")),
                (149530, Some(73.0), Some("fast")),
                (150456, Some(98.0), Some("slow")),
                (149530, Some(71.0), Some("slow")),
            ]
        );
        assert_eq!(
            d.status,
            vec![
                "measurement unavailable",
                "low perfusion detected",
                "sensor disconnected"
            ]
        );
        // PLXS: "measurement unavailable" and "sensor disconnected" mean the
        // 97 % is no measurement of the patient.
        assert_eq!(d.quality, vigil_model::Quality::Invalid);
        // Low perfusion alone (Device and Sensor Status bit 5): questionable.
        let d = dec("2A5F", "08 61 00 48 00 20 00 00");
        assert_eq!(d.status, vec!["low perfusion detected"]);
        assert_eq!(d.quality, vigil_model::Quality::Questionable);
    }

    #[test]
    fn continuous_every_flag_combination() {
        for flags in 0u8..32 {
            let mut p = format!("{flags:02x} 61 00 48 00");
            if flags & 1 != 0 {
                p += " 60 00 49 00";
            }
            if flags & 2 != 0 {
                p += " 62 00 47 00";
            }
            if flags & 4 != 0 {
                p += " 20 00"; // bit5 measurement ongoing
            }
            if flags & 8 != 0 {
                p += " 10 00 00"; // bit4 poor signal
            }
            if flags & 0x10 != 0 {
                p += " 19 F0";
            }
            let d = dec("2A5F", &p);
            let n_sec = 2 * usize::from(flags & 1 != 0) + 2 * usize::from(flags & 2 != 0);
            assert_eq!(d.secondary.len(), n_sec, "{p}");
            assert_eq!(d.measurements.len(), 2 + usize::from(flags & 0x10 != 0));
            assert_eq!(
                d.status.contains(&"measurement ongoing".to_string()),
                flags & 4 != 0
            );
            assert_eq!(
                d.status.contains(&"poor signal detected".to_string()),
                flags & 8 != 0
            );
            // Reserved bits 5–7 are ignored.
            assert_eq!(
                dec(
                    "2A5F",
                    &p.replacen(&format!("{flags:02x}"), &format!("{:02x}", flags | 0xE0), 1)
                ),
                d
            );
        }
    }

    #[test]
    fn special_values_are_not_numbers() {
        let d = dec("2A5F", "00 FF 07 FE 07");
        assert_eq!(d.measurements[0].value, None);
        assert_eq!(d.measurements[0].special, Some(vigil_model::Special::NaN));
        assert_eq!(d.measurements[1].special, Some(vigil_model::Special::PosInfinity));
    }

    #[test]
    fn spot_check_all_fields() {
        let d = dec("2A5E", &format!("1F 61 00 48 00 {TIME} 00 40 02 00 00 19 F0"));
        assert_eq!(
            vals(&d),
            vec![
                (150456, Some(97.0), "%"),
                (149530, Some(72.0), "/min"),
                (150488, Some(2.5), "%"),
            ]
        );
        assert_eq!(time_of(&d).as_deref(), Some(TIME_STR));
        assert_eq!(
            d.status,
            vec![
                "questionable measurement detected",
                "equipment malfunction detected",
                "device clock not set"
            ]
        );
    }

    #[test]
    fn spot_check_every_flag_combination() {
        for flags in 0u8..32 {
            let mut p = format!("{flags:02x} 61 00 48 00");
            if flags & 1 != 0 {
                p += " ";
                p += TIME;
            }
            if flags & 2 != 0 {
                p += " 00 80"; // bit15 invalid measurement
            }
            if flags & 4 != 0 {
                p += " 00 08 00"; // bit11 sensor unconnected
            }
            if flags & 8 != 0 {
                p += " 19 F0";
            }
            let d = dec("2A5E", &p);
            assert_eq!(d.device_time.is_some(), flags & 1 != 0, "{p}");
            assert_eq!(d.measurements.len(), 2 + usize::from(flags & 8 != 0));
            let has = |s: &str| d.status.iter().any(|x| x == s);
            assert_eq!(has("invalid measurement detected"), flags & 2 != 0);
            assert_eq!(has("sensor unconnected to user"), flags & 4 != 0);
            assert_eq!(has("device clock not set"), flags & 0x10 != 0);
        }
    }

    #[test]
    fn truncated_and_over_long() {
        assert_truncated(err("2A5F", "00 61 00 48"), 3, 2, 1);
        assert_truncated(err("2A5F", "01 61 00 48 00"), 5, 2, 0);
        assert_truncated(err("2A5F", "02 61 00 48 00 62 00"), 7, 2, 0);
        assert_truncated(err("2A5F", "08 61 00 48 00 00 00"), 5, 3, 2);
        assert_truncated(err("2A5F", "10 61 00 48 00 19"), 5, 2, 1);
        assert_trailing(err("2A5F", "00 61 00 48 00 00"), 5, 1);
        assert_truncated(err("2A5E", "01 61 00 48 00 E8 07 03"), 5, 7, 3);
        assert_truncated(err("2A5E", "02 61 00 48 00 00"), 5, 2, 1);
        assert_trailing(err("2A5E", "00 61 00 48 00 00 00"), 5, 2);
    }

    #[test]
    fn invalid_timestamp() {
        // month 13 at byte 5 + 2
        assert_invalid(err("2A5E", "01 61 00 48 00 E8 07 0D 0F 0A 1E 05"), 7);
        // 30 February
        assert_invalid(err("2A5E", "01 61 00 48 00 E8 07 02 1E 0A 1E 05"), 8);
        // unknown date: no time, no error
        let d = dec("2A5E", "01 61 00 48 00 00 00 00 00 00 00 00");
        assert_eq!(d.device_time, None);
    }
}

mod thermometer {
    use super::*;

    #[test]
    fn fahrenheit_is_carried_not_converted() {
        let d = dec("2A1C", "01 D3 03 00 FF");
        assert_eq!(vals(&d), vec![(150364, Some(97.9), "[degF]")]);
    }

    #[test]
    fn time_and_type() {
        let d = dec("2A1C", &format!("06 6E 01 00 FF {TIME} 02"));
        assert_eq!(time_of(&d).as_deref(), Some(TIME_STR));
        assert_eq!(d.site, Some("body (general)"));
        for (t, site) in [
            (1, "armpit"),
            (6, "mouth"),
            (7, "rectum"),
            (9, "tympanum (ear drum)"),
        ] {
            let d = dec("2A1C", &format!("04 6E 01 00 FF {t:02x}"));
            assert_eq!(d.site, Some(site));
        }
    }

    #[test]
    fn reserved_type_is_tolerated() {
        for t in [0u8, 10, 255] {
            let d = dec("2A1C", &format!("04 6E 01 00 FF {t:02x}"));
            assert_eq!(d.site, None);
            assert_eq!(d.status, vec![format!("reserved temperature type {t}")]);
            assert_eq!(d.measurements[0].value, Some(36.6));
        }
    }

    #[test]
    fn intermediate_temperature_same_format() {
        let d = dec("2A1E", &format!("07 D3 03 00 FF {TIME} 03"));
        assert_eq!(d.characteristic, "2a1e");
        assert_eq!(vals(&d), vec![(150364, Some(97.9), "[degF]")]);
        assert_eq!(d.site, Some("ear (usually earlobe)"));
    }

    #[test]
    fn every_flag_combination() {
        for c in ["2A1C", "2A1E"] {
            for flags in 0u8..8 {
                let mut p = format!("{flags:02x} 6E 01 00 FF");
                if flags & 2 != 0 {
                    p += " ";
                    p += TIME;
                }
                if flags & 4 != 0 {
                    p += " 06";
                }
                let d = dec(c, &p);
                let unit = if flags & 1 != 0 { "[degF]" } else { "Cel" };
                assert_eq!(vals(&d), vec![(150364, Some(36.6), unit)]);
                assert_eq!(d.device_time.is_some(), flags & 2 != 0);
                assert_eq!(d.site.is_some(), flags & 4 != 0);
                // RFU bits 3–7 ignored
                let p2 = p.replacen(&format!("{flags:02x}"), &format!("{:02x}", flags | 0xF8), 1);
                assert_eq!(dec(c, &p2), d);
            }
        }
    }

    #[test]
    fn special_values() {
        let d = dec("2A1C", "00 FF FF 7F 00");
        assert_eq!(d.measurements[0].special, Some(vigil_model::Special::NaN));
        let d = dec("2A1C", "00 00 00 80 00");
        assert_eq!(d.measurements[0].special, Some(vigil_model::Special::NRes));
    }

    #[test]
    fn errors() {
        assert_truncated(err("2A1C", "00 6E 01 00"), 1, 4, 3);
        assert_truncated(err("2A1C", "02 6E 01 00 FF E8 07"), 5, 7, 2);
        assert_truncated(err("2A1C", "04 6E 01 00 FF"), 5, 1, 0);
        assert_trailing(err("2A1C", "00 6E 01 00 FF 00"), 5, 1);
        assert_trailing(err("2A1E", "04 6E 01 00 FF 02 02"), 6, 1);
        assert_invalid(err("2A1C", "02 6E 01 00 FF E8 07 0D 01 00 00 00"), 7);
        assert_invalid(err("2A1C", "02 6E 01 00 FF E8 07 01 01 18 00 00"), 9);
        assert_invalid(err("2A1C", "02 6E 01 00 FF 10 00 01 01 00 00 00"), 5);
    }
}

mod blood_pressure {
    use super::*;

    #[test]
    fn kpa() {
        let d = dec("2A35", "01 A0 F0 6B F0 7D F0");
        assert_eq!(
            vals(&d),
            vec![
                (150021, Some(16.0), "kPa"),
                (150022, Some(10.7), "kPa"),
                (150023, Some(12.5), "kPa"),
            ]
        );
    }

    #[test]
    fn all_optional_fields() {
        let d = dec("2A35", &format!("1E 78 00 50 00 A5 F3 {TIME} 48 00 03 2A 00"));
        assert_eq!(
            vals(&d),
            vec![
                (150021, Some(120.0), "mm[Hg]"),
                (150022, Some(80.0), "mm[Hg]"),
                (150023, Some(93.3), "mm[Hg]"),
                (149546, Some(72.0), "/min"),
            ]
        );
        assert_eq!(time_of(&d).as_deref(), Some(TIME_STR));
        assert_eq!(d.user_id, Some(3));
        assert_eq!(
            d.status,
            vec![
                "cuff too loose",
                "improper measurement position",
                "pulse rate exceeds upper limit"
            ]
        );
    }

    #[test]
    fn status_bits() {
        let d = dec("2A35", "10 78 00 50 00 A5 F3 37 00");
        assert_eq!(
            d.status,
            vec![
                "body movement detected",
                "cuff too loose",
                "irregular pulse detected",
                "improper measurement position",
                "pulse rate less than lower limit"
            ]
        );
        // BLS Measurement Status bits only cast doubt: a cuff reading taken
        // with movement or a loose cuff is questionable, not no measurement.
        assert_eq!(d.quality, vigil_model::Quality::Questionable);
        // pulse-rate range 3 is RFU: ignored; RFU bits 6–15 ignored
        let d = dec("2A35", "10 78 00 50 00 A5 F3 18 FF");
        assert!(d.status.is_empty(), "{:?}", d.status);
        assert_eq!(d.quality, vigil_model::Quality::Valid);
    }

    #[test]
    fn every_flag_combination() {
        for flags in 0u8..32 {
            let mut p = format!("{flags:02x} 78 00 50 00 A5 F3");
            if flags & 2 != 0 {
                p += " ";
                p += TIME;
            }
            if flags & 4 != 0 {
                p += " 48 00";
            }
            if flags & 8 != 0 {
                p += " FF";
            }
            if flags & 0x10 != 0 {
                p += " 04 00";
            }
            let d = dec("2A35", &p);
            let unit = if flags & 1 != 0 { "kPa" } else { "mm[Hg]" };
            assert_eq!(d.measurements[0].unit, unit);
            assert_eq!(d.measurements.len(), 3 + usize::from(flags & 4 != 0));
            assert_eq!(d.device_time.is_some(), flags & 2 != 0);
            assert_eq!(d.user_id, (flags & 8 != 0).then_some(255));
            assert_eq!(d.status == vec!["irregular pulse detected"], flags & 0x10 != 0);
            // Intermediate cuff pressure shares the format.
            let i = dec("2A36", &p);
            assert_eq!(i.measurements[0].mdc, 150300);
            assert_eq!(i.measurements[0].value, Some(120.0));
            assert_eq!(i.measurements.len(), 1 + usize::from(flags & 4 != 0));
        }
    }

    #[test]
    fn intermediate_cuff_pressure_only_first_value() {
        let d = dec("2A36", "00 8C 00 FF 07 FF 07");
        assert_eq!(vals(&d), vec![(150300, Some(140.0), "mm[Hg]")]);
        let d = dec("2A36", "05 BC F0 FF 07 FF 07 48 00");
        assert_eq!(
            vals(&d),
            vec![(150300, Some(18.8), "kPa"), (149546, Some(72.0), "/min")]
        );
        // unused fields not NaN: ignored, not trusted
        let d = dec("2A36", "00 8C 00 50 00 64 00");
        assert_eq!(d.measurements.len(), 1);
    }

    #[test]
    fn errors() {
        assert_truncated(err("2A35", "00 78 00 50 00 A5"), 5, 2, 1);
        assert_truncated(err("2A35", "02 78 00 50 00 A5 F3 E8 07 03 0F"), 7, 7, 4);
        assert_truncated(err("2A35", "04 78 00 50 00 A5 F3"), 7, 2, 0);
        assert_truncated(err("2A35", "08 78 00 50 00 A5 F3"), 7, 1, 0);
        assert_truncated(err("2A35", "10 78 00 50 00 A5 F3 01"), 7, 2, 1);
        assert_truncated(err("2A36", "00 8C 00 FF 07"), 5, 2, 0);
        assert_trailing(err("2A35", "00 78 00 50 00 A5 F3 00"), 7, 1);
        assert_trailing(err("2A36", "08 8C 00 FF 07 FF 07 01 02"), 8, 1);
        assert_invalid(err("2A35", "02 78 00 50 00 A5 F3 E8 07 03 0F 0A 3C 05"), 12);
    }
}

mod weight {
    use super::*;
    use vigil_model::Special;

    #[test]
    fn si_and_imperial() {
        let d = dec("2A9D", "00 C9 36");
        assert_eq!(vals(&d), vec![(188736, Some(70.125), "kg")]);
        assert_eq!(d.measurements[0].exponent, Some(-3));
        let d = dec("2A9D", "01 5A 3C");
        assert_eq!(vals(&d), vec![(188736, Some(154.5), "[lb_av]")]);
        assert_eq!(d.measurements[0].exponent, Some(-2));
        let d = dec("2A9D", "00 00 00");
        assert_eq!(vals(&d), vec![(188736, Some(0.0), "kg")]);
        // largest real value: 65534 × 0.005
        let d = dec("2A9D", "00 FE FF");
        assert_eq!(d.measurements[0].value, Some(327.67));
    }

    #[test]
    fn measurement_unsuccessful_is_special() {
        for flags in ["00", "01"] {
            let d = dec("2A9D", &format!("{flags} FF FF"));
            assert_eq!(d.measurements[0].value, None);
            assert_eq!(d.measurements[0].special, Some(Special::NaN));
            assert_eq!(
                d.measurements[0].value(),
                vigil_model::Value::Special(Special::NaN)
            );
            assert_eq!(d.status, vec!["measurement unsuccessful"]);
        }
    }

    #[test]
    fn bmi_and_height() {
        let d = dec("2A9D", &format!("0E C9 36 {TIME} 01 F3 00 D6 06"));
        assert_eq!(
            vals(&d),
            vec![
                (188736, Some(70.125), "kg"),
                (188752, Some(24.3), "kg/m2"),
                (188740, Some(1.75), "m"),
            ]
        );
        assert_eq!(d.user_id, Some(1));
        assert_eq!(time_of(&d).as_deref(), Some(TIME_STR));
        let d = dec("2A9D", "09 5A 3C F3 00 B1 02");
        assert_eq!(
            vals(&d),
            vec![
                (188736, Some(154.5), "[lb_av]"),
                (188752, Some(24.3), "kg/m2"),
                (188740, Some(68.9), "[in_i]"),
            ]
        );
    }

    #[test]
    fn every_flag_combination() {
        for flags in 0u8..16 {
            let mut p = format!("{flags:02x} C9 36");
            if flags & 2 != 0 {
                p += " ";
                p += TIME;
            }
            if flags & 4 != 0 {
                p += " 07";
            }
            if flags & 8 != 0 {
                p += " F3 00 D6 06";
            }
            let d = dec("2A9D", &p);
            assert_eq!(d.measurements.len(), 1 + 2 * usize::from(flags & 8 != 0));
            assert_eq!(d.device_time.is_some(), flags & 2 != 0);
            assert_eq!(d.user_id, (flags & 4 != 0).then_some(7));
            let p2 = p.replacen(&format!("{flags:02x}"), &format!("{:02x}", flags | 0xF0), 1);
            assert_eq!(dec("2A9D", &p2), d);
        }
    }

    #[test]
    fn errors() {
        assert_truncated(err("2A9D", "00 C9"), 1, 2, 1);
        assert_truncated(err("2A9D", "08 C9 36 F3 00"), 5, 2, 0);
        assert_truncated(err("2A9D", "04 C9 36"), 3, 1, 0);
        assert_trailing(err("2A9D", "00 C9 36 00"), 3, 1);
        assert_invalid(err("2A9D", "02 C9 36 E8 07 03 20 00 00 00"), 6);
    }
}

mod glucose {
    use super::*;

    #[test]
    fn mass_concentration_to_mg_dl() {
        // seq 1, base 2024-03-15 10:30:00, +15 min, 95 mg/dL = 95e-5 kg/L,
        // capillary whole blood, finger.
        let d = dec("2A18", "03 01 00 E8 07 03 0F 0A 1E 00 0F 00 5F B0 11");
        assert_eq!(vals(&d), vec![(160184, Some(95.0), "mg/dL")]);
        assert_eq!(d.measurements[0].exponent, None);
        assert_eq!(d.sequence, Some(1));
        assert_eq!(d.time_offset_min, Some(15));
        assert_eq!(time_of(&d).as_deref(), Some("2024-03-15 10:45:00"));
        assert_eq!(d.site, Some("finger"));
    }

    #[test]
    fn molar_concentration_to_mmol_l() {
        // 0.0055 mol/L = 55e-4 → 5.5 mmol/L; venous plasma, alternate site.
        let d = dec("2A18", "06 2A 00 E8 07 03 0F 0A 1E 00 37 C0 24");
        assert_eq!(vals(&d), vec![(160196, Some(5.5), "mmol/L")]);
        assert_eq!(d.measurements[0].exponent, Some(-1));
        assert_eq!(d.sequence, Some(42));
        assert_eq!(d.site, Some("alternate site test"));
    }

    #[test]
    fn every_type_maps_to_its_code() {
        let codes = [
            160184, 160188, 160192, 160196, 160200, 160204, 160364, 160368, 160212, 160208,
        ];
        for (i, code) in codes.iter().enumerate() {
            let t = i + 1;
            let d = dec("2A18", &format!("02 01 00 {TIME} 5F B0 F{t:x}"));
            assert_eq!(d.measurements[0].mdc, *code, "type {t}");
            assert_eq!(d.site, None); // location 15 = not available
        }
        let d = dec("2A18", &format!("02 01 00 {TIME} 5F B0 4A"));
        assert!(d.status.iter().any(|s| s.starts_with("control solution")));
        assert_eq!(d.site, Some("control solution"));
    }

    #[test]
    fn reserved_type_is_rejected() {
        for ts in ["10", "1B", "FF"] {
            assert_invalid(err("2A18", &format!("02 01 00 {TIME} 5F B0 {ts}")), 12);
        }
        assert_invalid(err("2A18", &format!("03 01 00 {TIME} 00 00 5F B0 00")), 14);
    }

    #[test]
    fn negative_offset_unknown_base_and_no_value() {
        let d = dec("2A18", "01 05 00 E8 07 03 0F 0A 1E 00 E2 FF");
        assert_eq!(time_of(&d).as_deref(), Some("2024-03-15 10:00:00"));
        assert_eq!(d.time_offset_min, Some(-30));
        assert!(d.measurements.is_empty());
        let d = dec("2A18", "01 05 00 00 00 00 00 00 00 00 0F 00");
        assert_eq!(d.device_time, None);
        assert_eq!(d.time_offset_min, Some(15));
    }

    #[test]
    fn status_and_context() {
        let d = dec("2A18", &format!("18 01 00 {TIME} 03 08"));
        assert_eq!(
            d.status,
            vec![
                "device battery low at time of measurement",
                "sensor malfunction or faulting at time of measurement",
                "time fault: time may be inaccurate",
                "context information follows"
            ]
        );
        // GLS Sensor Status Annunciation bit 1 (sensor malfunction at the time
        // of measurement): the concentration is no measurement.
        assert_eq!(d.quality, vigil_model::Quality::Invalid);
        // Battery low (bit 0) alone says nothing about the value.
        let d = dec("2A18", &format!("08 01 00 {TIME} 01 00"));
        assert_eq!(d.quality, vigil_model::Quality::Valid);
        // A result above what the meter can process (bit 5) is a bound, not the value.
        let d = dec("2A18", &format!("08 01 00 {TIME} 20 00"));
        assert_eq!(d.quality, vigil_model::Quality::Questionable);
    }

    #[test]
    fn special_concentration() {
        let d = dec("2A18", &format!("02 01 00 {TIME} FF 07 11"));
        assert_eq!(d.measurements[0].special, Some(vigil_model::Special::NaN));
        assert_eq!(d.measurements[0].unit, "mg/dL");
    }

    #[test]
    fn every_flag_combination() {
        for flags in 0u8..32 {
            let mut p = format!("{flags:02x} 07 00 {TIME}");
            if flags & 1 != 0 {
                p += " 3C 00";
            }
            if flags & 2 != 0 {
                p += " 5F B0 11";
            }
            if flags & 8 != 0 {
                p += " 01 00";
            }
            let d = dec("2A18", &p);
            assert_eq!(d.sequence, Some(7));
            assert_eq!(d.measurements.len(), usize::from(flags & 2 != 0));
            if flags & 2 != 0 {
                let (v, unit) = if flags & 4 != 0 {
                    (0.95, "mmol/L") // the same SFLOAT read as mol/L
                } else {
                    (95.0, "mg/dL")
                };
                assert_eq!(vals(&d), vec![(160184, Some(v), unit)], "{p}");
            }
            let expect_time = if flags & 1 != 0 {
                "2024-03-15 11:30:05"
            } else {
                TIME_STR
            };
            assert_eq!(time_of(&d).as_deref(), Some(expect_time));
            let has = |s: &str| d.status.iter().any(|x| x == s);
            assert_eq!(has("device battery low at time of measurement"), flags & 8 != 0);
            assert_eq!(has("context information follows"), flags & 0x10 != 0);
        }
    }

    #[test]
    fn errors() {
        assert_truncated(err("2A18", "00 01"), 1, 2, 1);
        assert_truncated(err("2A18", "00 01 00 E8 07"), 3, 7, 2);
        assert_truncated(err("2A18", &format!("01 01 00 {TIME} 0F")), 10, 2, 1);
        assert_truncated(err("2A18", &format!("02 01 00 {TIME} 5F B0")), 12, 1, 0);
        assert_truncated(err("2A18", &format!("08 01 00 {TIME}")), 10, 2, 0);
        assert_trailing(err("2A18", &format!("00 01 00 {TIME} 00")), 10, 1);
        assert_invalid(err("2A18", "00 01 00 E8 07 03 0F 0A 1E 3C"), 9);
    }
}

/// Sanity: the test helpers format hex the way parse_hex reads it.
#[test]
fn hex_helper_round_trips() {
    let bytes = [0x00, 0x48, 0xff];
    assert_eq!(vigil_gatt::parse_hex(&hex(&bytes)).unwrap(), bytes);
    assert!(try_dec("2A37", &hex(&[0, 72])).is_ok());
}
