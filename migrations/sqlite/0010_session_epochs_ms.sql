-- "End all sessions" cut-offs in unix milliseconds (were seconds): a sign-in right after the
-- cut-off, in the same second, is no longer refused. Existing cut-offs keep their meaning.
update session_epochs set not_before = not_before * 1000;
