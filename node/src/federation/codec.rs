//! The `/tongban/fed/1` request-response codec: each side writes the raw bytes of one CBOR message
//! and closes its half of the stream; reads stop at the size limit, and an over-long message is an
//! explicit error rather than a truncated one (core decodes and checks the bytes).

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use tongban_core::federation::wire::{MAX_REQUEST, MAX_RESPONSE};

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/tongban/fed/1");

#[derive(Clone, Default)]
pub struct RawCodec;

async fn read_limited<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    io.take(limit as u64 + 1).read_to_end(&mut out).await?;
    if out.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message over {limit} bytes"),
        ));
    }
    Ok(out)
}

async fn write_all<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: Vec<u8>) -> io::Result<()> {
    io.write_all(&bytes).await?;
    io.close().await
}

impl libp2p::request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, MAX_REQUEST).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, MAX_RESPONSE).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, res).await
    }
}
