//! Button and input styles: one look per intent. Plain class strings, so a `<button>`, an `<a>` or a
//! form's submit can wear them.

/// The one main action of a view.
pub const PRIMARY: &str = "inline-flex items-center justify-center gap-2 rounded-md bg-accent px-4 py-2.5 text-sm font-semibold text-accent-fg shadow-sm hover:bg-accent-strong focus:outline-none focus-visible:ring-2 focus-visible:ring-ring focus-visible:ring-offset-2 focus-visible:ring-offset-surface disabled:cursor-wait disabled:opacity-70";

/// Another action beside the main one.
pub const SECONDARY: &str = "inline-flex items-center justify-center gap-2 rounded-md border border-line-strong bg-surface px-4 py-2.5 text-sm font-semibold text-fg shadow-sm hover:bg-sunken focus:outline-none focus-visible:ring-2 focus-visible:ring-ring focus-visible:ring-offset-2 focus-visible:ring-offset-surface disabled:cursor-not-allowed disabled:opacity-60";

/// A compact secondary action (in rows).
pub const SECONDARY_SMALL: &str = "inline-flex items-center justify-center gap-1.5 rounded-md border border-line-strong bg-surface px-3 py-1.5 text-sm font-semibold text-fg shadow-sm hover:bg-sunken focus:outline-none focus-visible:ring-2 focus-visible:ring-ring focus-visible:ring-offset-2 focus-visible:ring-offset-surface disabled:cursor-not-allowed disabled:opacity-60";

/// Destroys or takes something away (revoke, remove, end sessions).
pub const DANGER: &str = "inline-flex items-center justify-center gap-2 rounded-md bg-bad px-4 py-2.5 text-sm font-semibold text-surface shadow-sm hover:bg-bad-strong focus:outline-none focus-visible:ring-2 focus-visible:ring-bad focus-visible:ring-offset-2 focus-visible:ring-offset-surface disabled:cursor-wait disabled:opacity-70";

/// A compact destructive action (in rows), outlined until confirmed.
pub const DANGER_SMALL: &str = "inline-flex items-center justify-center gap-1.5 rounded-md border border-bad-line bg-surface px-3 py-1.5 text-sm font-semibold text-bad shadow-sm hover:bg-bad-soft focus:outline-none focus-visible:ring-2 focus-visible:ring-bad focus-visible:ring-offset-2 focus-visible:ring-offset-surface disabled:cursor-not-allowed disabled:opacity-60";

/// A quiet action in the header or a toolbar.
pub const GHOST: &str = "inline-flex items-center justify-center gap-1.5 rounded-md px-2.5 py-1.5 text-sm font-medium text-fg-soft hover:bg-sunken hover:text-fg focus:outline-none focus-visible:ring-2 focus-visible:ring-ring";

/// A text input.
pub const INPUT: &str = "mt-1 block w-full rounded-md border border-line-strong bg-surface px-3 py-2 text-fg shadow-sm placeholder:text-muted focus:border-ring focus:outline-none focus:ring-2 focus:ring-ring aria-invalid:border-bad read-only:bg-sunken";
