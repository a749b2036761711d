//! The hdfstream command-line tool.
fn main() {}
