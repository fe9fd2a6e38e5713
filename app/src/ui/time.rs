//! Times in one format everywhere: relative ("in 4 min", "2 h ago"), with the absolute time on hover
//! in the viewer's time zone and in UTC.

use leptos::prelude::*;

/// Unix seconds now, on either side.
pub fn now_secs() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }
}

/// Unix seconds now, tracked: in the browser one clock for the page moves on every 15 seconds, so
/// every relative time reads it and changes with it.
fn now() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        thread_local! {
            static NOW: std::cell::OnceCell<ArcRwSignal<i64>> = const { std::cell::OnceCell::new() };
        }
        NOW.with(|cell| {
            cell.get_or_init(|| {
                // Reference-counted, not owned by the first island that asks: a refresh in place
                // replaces islands, the clock stays.
                let now = ArcRwSignal::new(now_secs());
                let tick = now.clone();
                set_interval(
                    move || tick.set(now_secs()),
                    std::time::Duration::from_secs(15),
                );
                now
            })
            .get()
        })
    }
    #[cfg(not(feature = "hydrate"))]
    {
        now_secs()
    }
}

/// `at` relative to `now`, as people say it.
pub fn relative(at: i64, now: i64) -> String {
    let delta = at - now;
    let ahead = delta > 0;
    let secs = delta.unsigned_abs();
    let amount = match secs {
        0..45 => {
            return if ahead {
                "in under a minute".into()
            } else {
                "just now".into()
            }
        }
        45..5_400 => format!("{} min", secs.div_ceil(60).max(1)),
        5_400..129_600 => format!("{} h", (secs + 1_800) / 3_600),
        129_600..1_209_600 => format!("{} days", (secs + 43_200) / 86_400),
        _ => return date(at),
    };
    if ahead {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// `2026-12-01 15:50 UTC`.
pub fn utc(at: i64) -> String {
    let (y, m, d, hh, mm, _) = civil(at);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

/// `15:50 UTC`: an absolute time to print beside a relative one, for screens that cannot hover.
pub fn utc_clock(at: i64) -> String {
    let (_, _, _, hh, mm, _) = civil(at);
    format!("{hh:02}:{mm:02} UTC")
}

/// `2026-12-01T15:50:44Z`, for `<time datetime>`.
pub fn iso(at: i64) -> String {
    let (y, m, d, hh, mm, ss) = civil(at);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

fn date(at: i64) -> String {
    let (y, m, d, ..) = civil(at);
    format!("on {y:04}-{m:02}-{d:02}")
}

/// Year, month, day, hour, minute, second of unix seconds (UTC), by Howard Hinnant's algorithm.
fn civil(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3_600, secs % 3_600 / 60, secs % 60)
}

/// The time in the viewer's own zone ("1 Dec 2026, 16:50 CET"), in the browser only.
#[cfg(feature = "hydrate")]
fn local(at: i64) -> Option<String> {
    use leptos::wasm_bindgen::JsValue;
    let options = js_sys::Object::new();
    for (k, v) in [
        ("day", "numeric"),
        ("month", "short"),
        ("year", "numeric"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
        ("timeZoneName", "short"),
    ] {
        js_sys::Reflect::set(&options, &k.into(), &v.into()).ok()?;
    }
    let date = js_sys::Date::new(&JsValue::from_f64(at as f64 * 1000.0));
    date.to_locale_string("en-GB", &options).as_string()
}

/// A time, relative to now; the absolute time (the viewer's zone and UTC) on hover.
#[island]
pub fn RelativeTime(at: i64) -> impl IntoView {
    let text = move || relative(at, now());
    let title = RwSignal::new(utc(at));
    // The server does not know the viewer's zone; the browser fills it in once hydrated.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(local) = local(at) {
            title.set(format!("{local} · {}", utc(at)));
        }
    });
    view! { <time datetime=iso(at) title=move || title.get()>{text}</time> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = 1_764_604_800; // 2025-12-01 16:00 UTC
        assert_eq!(relative(now - 10, now), "just now");
        assert_eq!(relative(now + 10, now), "in under a minute");
        assert_eq!(relative(now + 240, now), "in 4 min");
        assert_eq!(relative(now - 3_600, now), "60 min ago");
        assert_eq!(relative(now - 2 * 3_600, now), "2 h ago");
        assert_eq!(relative(now + 3 * 86_400, now), "in 3 days");
        assert_eq!(relative(now - 40 * 86_400, now), "on 2025-10-22");
    }

    #[test]
    fn utc_formats() {
        assert_eq!(utc(1_764_604_800), "2025-12-01 16:00 UTC");
        assert_eq!(iso(1_764_604_844), "2025-12-01T16:00:44Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
    }
}
