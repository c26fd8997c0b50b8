"""The auth service: sign up, sign in, sign out, current user."""
