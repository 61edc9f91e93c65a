"""The Streamlit layer: cached loaders and services, widget groups, views. Only app.py, app_pages/ and
components/ import streamlit."""
