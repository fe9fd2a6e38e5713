//! Light, dark or the system's choice: remembered in a cookie, so the server renders the page in
//! the right scheme from the first byte (no flash), and switched in place once the page hydrates.

use leptos::prelude::*;

use crate::csrf::CsrfField;

/// The cookie that remembers the choice.
pub const THEME_COOKIE: &str = "countersign_theme";

/// A colour scheme choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    /// Follow the system setting.
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl Theme {
    /// From the cookie's or a form's value; anything else is [`Theme::System`].
    pub fn parse(value: &str) -> Self {
        match value {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            _ => Theme::System,
        }
    }

    /// The cookie's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    /// The class on `<html>` (none follows the system).
    pub fn html_class(self) -> &'static str {
        match self {
            Theme::System => "",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    /// The choice in a `Cookie` header.
    pub fn from_cookie_header(header: &str) -> Self {
        header
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == THEME_COOKIE)
            .map(|(_, v)| Theme::parse(v))
            .unwrap_or_default()
    }
}

/// This request's choice (server), or the page's (browser).
pub fn current_theme() -> Theme {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|p| {
                p.headers
                    .get(http::header::COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .map(Theme::from_cookie_header)
            })
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        let class = document()
            .document_element()
            .map(|e| e.class_name())
            .unwrap_or_default();
        Theme::parse(class.trim())
    }
}

/// Switch the page and remember the choice (browser only).
#[cfg(feature = "hydrate")]
fn apply(theme: Theme) {
    if let Some(html) = document().document_element() {
        html.set_class_name(theme.html_class());
    }
    let cookie = format!(
        "{THEME_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        theme.as_str()
    );
    let _ = js_sys::Reflect::set(&document(), &"cookie".into(), &cookie.into());
}

/// The three-way switch. A plain form underneath (works without script); in place once hydrated.
#[island]
pub fn ThemeSwitch() -> impl IntoView {
    let chosen = RwSignal::new(current_theme());
    let options = [
        (Theme::System, "System", "M4 5h16v11H4zM9 20h6M12 16v4"),
        (Theme::Light, "Light", "M12 4V2m0 20v-2m8-8h2M2 12h2m13.7-5.7l1.4-1.4M4.9 19.1l1.4-1.4m0-11.4L4.9 4.9m14.2 14.2l-1.4-1.4M16 12a4 4 0 11-8 0 4 4 0 018 0z"),
        (Theme::Dark, "Dark", "M21 12.8A9 9 0 1111.2 3a7 7 0 009.8 9.8z"),
    ];
    view! {
        <form method="post" action="/theme" class="flex items-center gap-1" aria-label="Colour scheme">
            <CsrfField />
            <span class="mr-1 text-xs font-medium text-muted">"Theme"</span>
            {options.into_iter().map(|(theme, label, icon)| view! {
                <button type="submit" name="theme" value=theme.as_str()
                    aria-pressed=move || (chosen.get() == theme).to_string()
                    title=format!("{label} colour scheme")
                    on:click=move |ev| {
                        #[cfg(feature = "hydrate")]
                        {
                            ev.prevent_default();
                            apply(theme);
                        }
                        #[cfg(not(feature = "hydrate"))]
                        let _ = ev;
                        chosen.set(theme);
                    }
                    class="inline-flex items-center gap-1 rounded-md border border-transparent px-2 py-1 text-xs font-medium text-fg-soft hover:bg-sunken aria-pressed:border-line-strong aria-pressed:bg-sunken aria-pressed:text-fg focus:outline-none focus-visible:ring-2 focus-visible:ring-ring">
                    <svg aria-hidden="true" viewBox="0 0 24 24" class="h-4 w-4" fill="none" stroke="currentColor" stroke-width="2">
                        <path stroke-linecap="round" stroke-linejoin="round" d=icon />
                    </svg>
                    {label}
                </button>
            }).collect_view()}
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_decides_and_anything_else_follows_the_system() {
        assert_eq!(
            Theme::from_cookie_header("a=b; countersign_theme=dark"),
            Theme::Dark
        );
        assert_eq!(
            Theme::from_cookie_header("countersign_theme=light"),
            Theme::Light
        );
        assert_eq!(
            Theme::from_cookie_header("countersign_theme=<script>"),
            Theme::System
        );
        assert_eq!(Theme::from_cookie_header(""), Theme::System);
        assert_eq!(Theme::Dark.html_class(), "dark");
    }
}
