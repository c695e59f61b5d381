//! (being written)
#[derive(Debug)]
pub struct Log;
