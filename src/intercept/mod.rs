//! The network intercept stage (`event_route[network:msg]`): codecs run on raw
//! buffers before parsing and after serializing.
