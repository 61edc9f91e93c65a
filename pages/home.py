import streamlit as st

st.title("Glimpse")
st.write("See what vision models see.")
