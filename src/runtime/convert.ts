// HostTensor <-> onnxruntime Tensor. Both ORT flavours share onnxruntime-common's Tensor shape, so one pair of
// functions serves them; bfloat16 cannot cross the session boundary (ORT limitation), so graphs take and return
// float32, float16 and integer tensors only.

import { DType, HostTensor, TypedArrayFor } from '../io/host-tensor.js';

export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

export type OrtTensorCtor = new (type: string, data: unknown, dims: readonly number[]) => OrtTensorLike;

const ORT_TYPES: Partial<Record<DType, string>> = {
  float32: 'float32',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  uint8: 'uint8',
  bool: 'bool',
};

export function toOrt(Tensor: OrtTensorCtor, name: string, t: HostTensor): OrtTensorLike {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw new Error(`input "${name}": dtype ${t.dtype} cannot be passed to ONNX Runtime`);
  return new Tensor(type, t.data, [...t.shape]);
}

export function fromOrt(name: string, t: OrtTensorLike): HostTensor {
  const dtype = (Object.keys(ORT_TYPES) as DType[]).find((d) => ORT_TYPES[d] === t.type);
  if (!dtype) throw new Error(`output "${name}": unsupported ONNX Runtime type ${t.type}`);
  let data = t.data as TypedArrayFor<DType>;
  if (dtype === 'bool' && !(data instanceof Uint8Array)) data = Uint8Array.from(data as unknown as ArrayLike<number>);
  return new HostTensor(dtype, [...t.dims], data);
}
