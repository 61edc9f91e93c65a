"""The Streamlit layer: cached loaders and services, widget groups, views. Only app.py, pages/ and
components/ import streamlit."""
