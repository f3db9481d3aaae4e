"""Thin Tornado handlers: each turns a request into one controller call and renders the result."""
